/** One control per stage setting, chosen by the descriptor's `control`. */

import type { StageSetting } from "../api/client";
import { Field } from "../ui/form";
import { optionsOf } from "./agent-model";

function num(setting: StageSetting, name: string): number | undefined {
  const v = setting[name];
  return typeof v === "number" ? v : undefined;
}

export function SettingField({
  id,
  setting,
  error,
  onChange,
}: {
  id: string;
  setting: StageSetting;
  error?: string | null;
  onChange: (value: unknown) => void;
}) {
  const unit = typeof setting["unit"] === "string" ? ` (${setting["unit"] as string})` : "";
  const label = `${setting.label || setting.key}${unit}`;
  const described = error ? `${id}-error` : undefined;
  const options = optionsOf(setting);
  const value = setting.value;

  switch (setting.control) {
    case "select":
      return (
        <Field id={id} label={label} error={error}>
          <select id={id} value={String(value ?? "")} aria-describedby={described} onChange={(e) => onChange(e.currentTarget.value)}>
            {options.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </Field>
      );
    case "multi-select": {
      const picked = Array.isArray(value) ? value.map(String) : [];
      return (
        <fieldset class={`field checks${error ? " invalid" : ""}`} aria-describedby={described}>
          <legend>{label}</legend>
          {options.length === 0 && <small class="hint">Nothing to choose.</small>}
          {options.map((o) => (
            <label key={o.value} class="check">
              <input
                type="checkbox"
                checked={picked.includes(o.value)}
                onChange={(e) =>
                  onChange(
                    e.currentTarget.checked ? [...picked, o.value] : picked.filter((p) => p !== o.value),
                  )
                }
              />
              {o.label}
            </label>
          ))}
          {error && (
            <small class="field-error" id={`${id}-error`} role="alert">
              {error}
            </small>
          )}
        </fieldset>
      );
    }
    case "switch":
      return (
        <div class={`field switch${error ? " invalid" : ""}`}>
          <label class="check">
            <input id={id} type="checkbox" checked={value === true} onChange={(e) => onChange(e.currentTarget.checked)} />
            {label}
          </label>
          {error && (
            <small class="field-error" id={`${id}-error`} role="alert">
              {error}
            </small>
          )}
        </div>
      );
    case "number":
      return (
        <Field id={id} label={label} error={error}>
          <input
            id={id}
            type="number"
            inputMode="decimal"
            value={typeof value === "number" ? value : String(value ?? "")}
            min={num(setting, "min")}
            max={num(setting, "max")}
            step={num(setting, "step") ?? "any"}
            aria-describedby={described}
            onInput={(e) => {
              const raw = e.currentTarget.value;
              onChange(raw === "" ? raw : Number(raw));
            }}
          />
        </Field>
      );
    case "textarea":
      return (
        <Field id={id} label={label} error={error}>
          <textarea id={id} rows={setting.key === "system_prompt" ? 8 : 3} value={String(value ?? "")} aria-describedby={described} onInput={(e) => onChange(e.currentTarget.value)} />
        </Field>
      );
    case "multi-text": {
      const lines = Array.isArray(value) ? value.map(String) : [];
      const max = num(setting, "maxItems");
      return (
        <Field id={id} label={label} error={error} hint={`One per line${max ? `, at most ${max}` : ""}.`}>
          <textarea id={id} rows={3} value={lines.join("\n")} aria-describedby={described} onInput={(e) => onChange(e.currentTarget.value.split("\n").filter((l) => l.trim()))} />
        </Field>
      );
    }
    case "key-value-list": {
      const pairs = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
      const text = Object.entries(pairs)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join("\n");
      return (
        <Field id={id} label={label} error={error} hint="One `Name: value` per line.">
          <textarea
            id={id}
            rows={3}
            value={text}
            aria-describedby={described}
            onChange={(e) => {
              const next: Record<string, string> = {};
              for (const line of e.currentTarget.value.split("\n")) {
                const at = line.indexOf(":");
                if (at > 0) next[line.slice(0, at).trim()] = line.slice(at + 1).trim();
              }
              onChange(next);
            }}
          />
        </Field>
      );
    }
    default:
      return (
        <Field id={id} label={label} error={error}>
          <input
            id={id}
            value={String(value ?? "")}
            placeholder={typeof setting["placeholder"] === "string" ? (setting["placeholder"] as string) : undefined}
            aria-describedby={described}
            onInput={(e) => onChange(e.currentTarget.value)}
          />
        </Field>
      );
  }
}
