// What cloudflared's output lines mean to the supervisor: startup failures, login prompts, origin errors.
export type OutputSignal =
  | { readonly kind: "address_in_use" }
  | { readonly kind: "start_failure"; readonly reason: string }
  | { readonly kind: "login_prompt" }
  | { readonly kind: "origin_failure" }
  | { readonly kind: "binding" }
  | { readonly kind: "error" }
  | { readonly kind: "info" };

const LOGIN_PROMPTS = [
  "Please open the following URL",
  "A browser window should have opened",
  "/cdn-cgi/access/cli",
  "already waiting for authentication",
];
const START_FAILURES = ["Incorrect Usage", "Error validating origin URL"];

export function classifyLine(line: string): OutputSignal {
  if (line.includes("address already in use")) return { kind: "address_in_use" };
  for (const failure of START_FAILURES) if (line.includes(failure)) return { kind: "start_failure", reason: failure };
  if (LOGIN_PROMPTS.some((prompt) => line.includes(prompt))) return { kind: "login_prompt" };
  if (line.includes("failed to connect to origin")) return { kind: "origin_failure" };
  if (line.includes("Start Websocket listener")) return { kind: "binding" };
  if (/\b(ERR|FTL|error)\b/i.test(line)) return { kind: "error" };
  return { kind: "info" };
}
