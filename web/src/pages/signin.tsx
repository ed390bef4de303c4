/** Sign in, create an account, or (Supabase) get a magic link. */

import { useState } from "preact/hooks";
import { sendMagicLink, signIn, signUp } from "../auth/session";
import type { AuthMode } from "../config";
import { Field, useAction, value } from "../ui/form";

type Tab = "signin" | "signup" | "magic";

export function SignInPage({ expired, mode }: { expired: boolean; mode: AuthMode }) {
  const [tab, setTab] = useState<Tab>("signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const action = useAction();

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setNotice(null);
    await action.run(async () => {
      if (tab === "signin") await signIn(email.trim(), password);
      else if (tab === "signup") setNotice(await signUp(email.trim(), password, name.trim()));
      else {
        await sendMagicLink(email.trim());
        setNotice(`We sent a sign-in link to ${email.trim()}. Open it on this device.`);
      }
    });
  };

  const tabs: [Tab, string][] = [
    ["signin", "Sign in"],
    ["signup", "Create account"],
  ];
  if (mode === "supabase") tabs.push(["magic", "Email me a link"]);

  return (
    <main class="signin" id="main">
      <div class="card">
        <h1>
          <img src="./favicon.svg" alt="" width="28" height="28" /> OpenDot console
        </h1>
        {expired && (
          <p class="state notice" role="status">
            Your session expired. Sign in to continue; your unsaved changes are kept.
          </p>
        )}
        <div class="tabs" role="tablist" aria-label="How to sign in">
          {tabs.map(([id, label]) => (
            <button
              key={id}
              type="button"
              role="tab"
              id={`tab-${id}`}
              aria-selected={tab === id}
              onClick={() => {
                setTab(id);
                action.setError(null);
                setNotice(null);
              }}
            >
              {label}
            </button>
          ))}
        </div>
        <form onSubmit={(e) => void submit(e)} aria-labelledby={`tab-${tab}`}>
          <Field id="email" label="Email">
            <input
              id="email"
              type="email"
              autoComplete="email"
              required
              value={email}
              onInput={(e) => setEmail(value(e))}
            />
          </Field>
          {tab === "signup" && (
            <Field id="display-name" label="Your name (optional)">
              <input
                id="display-name"
                autoComplete="name"
                value={name}
                onInput={(e) => setName(value(e))}
              />
            </Field>
          )}
          {tab !== "magic" && (
            <Field
              id="password"
              label="Password"
              hint={tab === "signup" ? "At least 8 characters." : undefined}
            >
              <input
                id="password"
                type="password"
                autoComplete={tab === "signup" ? "new-password" : "current-password"}
                required
                value={password}
                onInput={(e) => setPassword(value(e))}
              />
            </Field>
          )}
          {action.error && (
            <p class="state error" role="alert">
              {action.error}
            </p>
          )}
          {notice && (
            <p class="state notice" role="status">
              {notice}
            </p>
          )}
          <button type="submit" class="primary" disabled={action.busy}>
            {action.busy
              ? "Working…"
              : tab === "signin"
                ? "Sign in"
                : tab === "signup"
                  ? "Create account"
                  : "Send the link"}
          </button>
        </form>
        <p class="hint">
          {mode === "supabase"
            ? "Signed in through Supabase Auth."
            : "Trying it locally? The demo user is demo@opendot.local / opendot-demo."}
        </p>
      </div>
    </main>
  );
}
