/** Agents: list, create, rename, delete; open one to edit it or talk to it. */

import { useState } from "preact/hooks";
import { call, type Agent } from "../api/client";
import { invalidate } from "../api/cache";
import { keys, useAgents } from "../api/resources";
import { href, navigate } from "../router";
import { useConfirm } from "../ui/confirm";
import { Field, useAction, value } from "../ui/form";
import { Empty, Loaded } from "../ui/status";
import { ago, stamp } from "../ui/time";

export function AgentsPage() {
  const agents = useAgents();
  const [confirm, ask] = useConfirm();
  return (
    <section>
      <h1>Agents</h1>
      <CreateAgent />
      <Loaded resource={agents} what="agents">
        {(list) =>
          list.length === 0 ? (
            <Empty>
              <p>No agents yet. Create one above: it starts with a working offline pipeline.</p>
            </Empty>
          ) : (
            <ul class="cards" aria-label="Your agents">
              {list.map((agent) => (
                <AgentRow
                  key={agent.id}
                  agent={agent}
                  onDelete={() =>
                    ask({
                      title: `Delete ${agent.name}?`,
                      body: "Its versions go with it, and any Dot bound to it is unbound. This cannot be undone.",
                      action: "Delete agent",
                      onConfirm: async () => {
                        await call((c) =>
                          c.DELETE("/api/agents/{agent_id}", { params: { path: { agent_id: agent.id } } }),
                        );
                        invalidate(keys.agents, keys.agent(agent.id), keys.devices);
                      },
                    })
                  }
                />
              ))}
            </ul>
          )
        }
      </Loaded>
      {confirm}
    </section>
  );
}

function CreateAgent() {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const action = useAction();
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    await action.run(async () => {
      const { agent } = await call((c) =>
        c.POST("/api/agents", { body: { name: name.trim(), description: description.trim() } }),
      );
      invalidate(keys.agents);
      setName("");
      setDescription("");
      navigate(`/agents/${agent.id}`);
    });
  };
  return (
    <form class="inline-form" onSubmit={(e) => void submit(e)} aria-label="Create an agent">
      <Field id="new-agent-name" label="New agent name">
        <input id="new-agent-name" required maxLength={200} value={name} onInput={(e) => setName(value(e))} />
      </Field>
      <Field id="new-agent-description" label="Description (optional)">
        <input id="new-agent-description" maxLength={4000} value={description} onInput={(e) => setDescription(value(e))} />
      </Field>
      <button type="submit" class="primary" disabled={action.busy}>
        {action.busy ? "Creating…" : "Create agent"}
      </button>
      {action.error && (
        <p class="state error" role="alert">
          {action.error}
        </p>
      )}
    </form>
  );
}

function AgentRow({ agent, onDelete }: { agent: Agent; onDelete: () => void }) {
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(agent.name);
  const action = useAction();
  const rename = async (event: Event): Promise<void> => {
    event.preventDefault();
    const ok = await action.run(async () => {
      await call((c) =>
        c.PUT("/api/agents/{agent_id}", { params: { path: { agent_id: agent.id } }, body: { name: name.trim() } }),
      );
      invalidate(keys.agents, keys.agent(agent.id), keys.versions(agent.id), keys.devices);
    });
    if (ok) setRenaming(false);
  };
  const idBase = `agent-${agent.id}`;
  return (
    <li class="card" data-agent={agent.name}>
      {renaming ? (
        <form class="inline-form" onSubmit={(e) => void rename(e)}>
          <Field id={`${idBase}-name`} label="Name" error={action.error}>
            <input id={`${idBase}-name`} required maxLength={200} value={name} onInput={(e) => setName(value(e))} />
          </Field>
          <button type="submit" class="primary" disabled={action.busy}>
            Save name
          </button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <h2>
          <a href={href(`/agents/${agent.id}`)}>{agent.name}</a>
        </h2>
      )}
      <p class="muted">{agent.description || "No description."}</p>
      <p class="meta">
        <span class="tag">{agent.architecture === "speech_to_speech" ? "speech-to-speech" : "pipeline"}</span>{" "}
        <span>version {agent.version}</span> · <span title={stamp(agent.updatedAt)}>edited {ago(agent.updatedAt)}</span>
      </p>
      <div class="actions">
        <a class="button" href={href(`/agents/${agent.id}`)}>
          Edit
        </a>
        <a class="button" href={href(`/talk?agent=${agent.id}`)}>
          Talk
        </a>
        <a class="button" href={href(`/history?agent=${agent.id}`)}>
          History
        </a>
        <button type="button" onClick={() => setRenaming(true)} aria-label={`Rename ${agent.name}`}>
          Rename
        </button>
        <button type="button" class="danger" onClick={onDelete} aria-label={`Delete ${agent.name}`}>
          Delete
        </button>
      </div>
    </li>
  );
}
