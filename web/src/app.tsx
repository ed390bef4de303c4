/** The frame: navigation, who is signed in, and the page the route names. */

import { useEffect, useState } from "preact/hooks";
import { authState, signOut, subscribe } from "./auth/session";
import { href, navigate, useRoute } from "./router";
import { AgentsPage } from "./pages/agents";
import { AgentEditorPage } from "./pages/agent-editor";
import { DotsPage } from "./pages/dots";
import { FirmwarePage } from "./pages/firmware";
import { HistoryPage } from "./pages/history";
import { SettingsPage } from "./pages/settings";
import { SerialPage, serialSupported } from "./pages/serial";
import { SignInPage } from "./pages/signin";
import { TalkPage } from "./pages/talk";
import { Loading } from "./ui/status";

const NAV = [
  { path: "/agents", label: "Agents" },
  { path: "/talk", label: "Talk" },
  { path: "/dots", label: "Dots" },
  { path: "/firmware", label: "Firmware" },
  { path: "/history", label: "History" },
  { path: "/console", label: "Device console", serial: true },
  { path: "/settings", label: "Settings" },
] as const;

const TITLES: Record<string, string> = {
  agents: "Agents",
  talk: "Talk",
  dots: "Dots",
  firmware: "Firmware",
  history: "History",
  console: "Device console",
  settings: "Settings",
  signin: "Sign in",
};

function useAuth() {
  const [state, setState] = useState(authState);
  useEffect(() => {
    const stop = subscribe(() => setState(authState()));
    setState(authState()); // it may have changed between the first render and now
    return stop;
  }, []);
  return state;
}

export function App() {
  const auth = useAuth();
  const route = useRoute();
  const section = route.parts[0] ?? "agents";

  const titled = auth.status === "signedOut" ? "signin" : section;
  useEffect(() => {
    document.title = `${TITLES[titled] ?? "OpenDot"} · OpenDot console`;
  }, [titled]);

  useEffect(() => {
    if (auth.status === "signedIn" && section === "signin") {
      navigate(route.query.get("next") || "/agents");
    }
  }, [auth.status, section]);

  if (auth.status === "loading") return <Loading what="your session" />;
  if (auth.status === "signedOut") return <SignInPage expired={auth.expired} mode={auth.mode} />;

  let page;
  switch (section) {
    case "agents":
      page = route.parts[1] ? <AgentEditorPage agentId={route.parts[1]} /> : <AgentsPage />;
      break;
    case "talk":
      page = <TalkPage agentId={route.query.get("agent")} />;
      break;
    case "dots":
      page = <DotsPage />;
      break;
    case "firmware":
      page = <FirmwarePage />;
      break;
    case "history":
      page = (
        <HistoryPage deviceId={route.query.get("device")} agentId={route.query.get("agent")} />
      );
      break;
    case "console":
      page = <SerialPage />;
      break;
    case "settings":
      page = <SettingsPage />;
      break;
    default:
      page = (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page here. <a href={href("/agents")}>Go to your agents</a>.
          </p>
        </section>
      );
  }

  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href("/agents")}>
          <img src="./favicon.svg" alt="" width="22" height="22" />
          OpenDot
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.filter((item) => !("serial" in item) || serialSupported()).map((item) => (
              <li key={item.path}>
                <a
                  href={href(item.path)}
                  aria-current={`/${section}` === item.path ? "page" : undefined}
                >
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span title={auth.user?.email}>{auth.user?.displayName || auth.user?.email}</span>
          <button type="button" class="link" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}
