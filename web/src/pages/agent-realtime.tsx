/**
 * The speech-to-speech (`realtime`) block: one realtime model hears and answers.
 * Enumerated values are selects (the API drops anything else on save); model
 * names are free text with suggestions (an Azure deployment has its own name).
 */

import { useSecrets } from "../api/resources";
import { Field, value } from "../ui/form";
import { REALTIME_CHOICES, TURN_RANGES } from "./realtime-choices";

type Realtime = Record<string, unknown>;

const LABELS: Record<string, string> = {
  openai: "OpenAI",
  azure: "Azure OpenAI",
  echo: "Echo (offline demo, no key)",
  none: "None: the turn fails",
  pipeline: "The pipeline below",
  semantic_vad: "Semantic (the model judges the end of a thought)",
  server_vad: "Silence (voice activity and a pause)",
};

const text = (v: unknown): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

function Choice({
  id,
  label,
  choices,
  current,
  onChange,
}: {
  id: string;
  label: string;
  choices: readonly string[];
  current: unknown;
  onChange: (v: string) => void;
}) {
  return (
    <Field id={id} label={label}>
      <select id={id} value={text(current)} onChange={(e) => onChange(e.currentTarget.value)}>
        {choices.map((c) => (
          <option key={c} value={c}>
            {LABELS[c] ?? c}
          </option>
        ))}
      </select>
    </Field>
  );
}

function NumberField({
  id,
  label,
  range,
  step,
  current,
  onChange,
}: {
  id: string;
  label: string;
  range: readonly [number, number];
  step: number;
  current: unknown;
  onChange: (v: number | string) => void;
}) {
  return (
    <Field id={id} label={label} hint={`${range[0]} to ${range[1]}.`}>
      <input
        id={id}
        type="number"
        inputMode="decimal"
        min={range[0]}
        max={range[1]}
        step={step}
        value={typeof current === "number" ? current : text(current)}
        aria-describedby={`${id}-hint`}
        onInput={(e) => {
          const raw = value(e);
          onChange(raw === "" ? raw : Number(raw));
        }}
      />
    </Field>
  );
}

// Names the API accepts for models and keys (shared/agent_config.py _REALTIME_NAME).
const NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9._:\\/\\-]{0,99}";

export function RealtimeBlock({
  realtime,
  errorAt,
  onChange,
}: {
  realtime: Realtime;
  errorAt: (key: string) => string | null;
  onChange: (next: Realtime) => void;
}) {
  const put = (key: string, v: unknown): void => onChange({ ...realtime, [key]: v });
  const turn = (realtime["turnDetection"] ?? {}) as Record<string, unknown>;
  const putTurn = (key: string, v: unknown): void => put("turnDetection", { ...turn, [key]: v });
  const semantic = turn["type"] !== "server_vad";
  const at = (key: string): string | null => errorAt(`realtime.${key}`);
  const secrets = useSecrets();
  return (
    <fieldset class="stage" id="realtime">
      <legend>
        Speech-to-speech <span class="tag">realtime</span>
      </legend>
      <p class="muted">One realtime model hears and answers; the pipeline below can be its fallback.</p>
      <div class="grid">
        <Choice id="realtime-provider" label="Provider" choices={REALTIME_CHOICES.provider} current={realtime["provider"]} onChange={(v) => put("provider", v)} />
        <Field id="realtime-model" label="Model" error={at("model")} hint="A suggestion, or your deployment's name.">
          <input
            id="realtime-model"
            list="realtime-models"
            autoComplete="off"
            pattern={NAME_PATTERN}
            title="Letters, digits and . _ : / - (no spaces)."
            value={text(realtime["model"])}
            aria-describedby="realtime-model-hint"
            onInput={(e) => put("model", value(e))}
          />
          <datalist id="realtime-models">
            {REALTIME_CHOICES.model.map((m) => (
              <option key={m} value={m} />
            ))}
          </datalist>
        </Field>
        <Choice id="realtime-voice" label="Voice" choices={REALTIME_CHOICES.voice} current={realtime["voice"]} onChange={(v) => put("voice", v)} />
        <Choice
          id="realtime-reasoning"
          label="Reasoning effort"
          choices={REALTIME_CHOICES.reasoningEffort}
          current={realtime["reasoningEffort"]}
          onChange={(v) => put("reasoningEffort", v)}
        />
        <Field id="realtime-instructions" label="Instructions" error={at("instructions")}>
          <textarea id="realtime-instructions" rows={5} value={text(realtime["instructions"])} onInput={(e) => put("instructions", value(e))} />
        </Field>
        <Field id="realtime-transcription" label="Transcription model" error={at("transcriptionModel")} hint="Writes down what the person said, for History.">
          <input
            id="realtime-transcription"
            autoComplete="off"
            pattern={NAME_PATTERN}
            title="Letters, digits and . _ : / - (no spaces)."
            value={text(realtime["transcriptionModel"])}
            aria-describedby="realtime-transcription-hint"
            onInput={(e) => put("transcriptionModel", value(e))}
          />
        </Field>
      </div>

      <fieldset class="nested">
        <legend>Turn detection</legend>
        <div class="grid">
          <Choice id="realtime-turn-type" label="When the person has finished" choices={REALTIME_CHOICES.type} current={turn["type"]} onChange={(v) => putTurn("type", v)} />
          {semantic ? (
            <Choice id="realtime-turn-eagerness" label="Eagerness" choices={REALTIME_CHOICES.eagerness} current={turn["eagerness"]} onChange={(v) => putTurn("eagerness", v)} />
          ) : (
            <>
              <NumberField id="realtime-turn-threshold" label="Threshold" range={TURN_RANGES.threshold} step={0.05} current={turn["threshold"]} onChange={(v) => putTurn("threshold", v)} />
              <NumberField
                id="realtime-turn-prefix"
                label="Prefix padding (ms)"
                range={TURN_RANGES.prefixPaddingMs}
                step={10}
                current={turn["prefixPaddingMs"]}
                onChange={(v) => putTurn("prefixPaddingMs", v)}
              />
              <NumberField
                id="realtime-turn-silence"
                label="Silence duration (ms)"
                range={TURN_RANGES.silenceDurationMs}
                step={10}
                current={turn["silenceDurationMs"]}
                onChange={(v) => putTurn("silenceDurationMs", v)}
              />
            </>
          )}
          <div class="field switch">
            <label class="check">
              <input id="realtime-turn-create" type="checkbox" checked={turn["createResponse"] !== false} onChange={(e) => putTurn("createResponse", e.currentTarget.checked)} />
              Answer when the turn ends
            </label>
          </div>
          <div class="field switch">
            <label class="check">
              <input
                id="realtime-turn-interrupt"
                type="checkbox"
                checked={turn["interruptResponse"] !== false}
                onChange={(e) => putTurn("interruptResponse", e.currentTarget.checked)}
              />
              The person can interrupt the answer
            </label>
          </div>
        </div>
      </fieldset>

      <fieldset class="nested">
        <legend>Connection</legend>
        <div class="grid">
          <Field id="realtime-base-url" label="Base URL (empty: the provider's own)" error={at("baseUrl")}>
            <input
              id="realtime-base-url"
              type="url"
              maxLength={500}
              placeholder={realtime["provider"] === "azure" ? "https://<resource>.openai.azure.com/openai/v1" : "https://api.openai.com/v1"}
              value={text(realtime["baseUrl"])}
              onInput={(e) => put("baseUrl", value(e))}
            />
          </Field>
          <Field id="realtime-key" label="API key (secret name)" error={at("apiKeyName")} hint="Empty for a server that needs no key.">
            <input
              id="realtime-key"
              list="realtime-secret-names"
              autoComplete="off"
              pattern={NAME_PATTERN}
              value={text(realtime["apiKeyName"])}
              aria-describedby="realtime-key-hint"
              onInput={(e) => put("apiKeyName", value(e))}
            />
          </Field>
          <datalist id="realtime-secret-names">
            {(secrets.data ?? []).map((s) => (
              <option key={s.name} value={s.name} />
            ))}
          </datalist>
          <Choice id="realtime-fallback" label="When the provider fails" choices={REALTIME_CHOICES.fallback} current={realtime["fallback"]} onChange={(v) => put("fallback", v)} />
        </div>
      </fieldset>
    </fieldset>
  );
}
