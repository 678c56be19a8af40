// The typed client: every path, parameter, body and answer comes from the generated contract.
import createClient from "openapi-fetch";

import type { components, paths } from "./generated/api.js";

export type Problem = components["schemas"]["Problem"];

export function tasksClient(baseUrl: string, token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}
