/** Loading, empty and error states, the same everywhere. */

import type { ComponentChildren } from "preact";
import type { Resource } from "../api/cache";
import { messageOf } from "../api/errors";

export function Loading({ what }: { what: string }) {
  return (
    <p class="state loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state empty">{children}</div>;
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  return (
    <div class="state error" role="alert">
      <span>{messageOf(error)}</span>
      {retry && (
        <button type="button" class="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** Render a resource: loading / error / the page's own view of the data. */
export function Loaded<T>({
  resource,
  what,
  children,
}: {
  resource: Resource<T>;
  what: string;
  children: (data: T) => ComponentChildren;
}) {
  if (resource.data !== undefined) {
    return (
      <>
        {resource.error && <ErrorBox error={resource.error} retry={resource.reload} />}
        {children(resource.data)}
      </>
    );
  }
  if (resource.error) return <ErrorBox error={resource.error} retry={resource.reload} />;
  return <Loading what={what} />;
}
