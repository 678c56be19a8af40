// A frontend's day with the generated client: create, list, toggle, update, delete.
// Reads TASKS_API_URL, TASKS_API_TOKEN and TASKS_API_USER_ID; prints one JSON line of what it did
// and exits non-zero on any answer the contract does not promise.
import { type Problem, tasksClient } from "./client.js";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function fail(step: string, status: number, problem: Problem | undefined): never {
  throw new Error(`${step}: HTTP ${status}: ${problem?.detail ?? "no problem body"}`);
}

const api = tasksClient(required("TASKS_API_URL"), required("TASKS_API_TOKEN"));
const user_id = required("TASKS_API_USER_ID");
const tasks = { params: { path: { user_id } } };
const task = (task_id: number) => ({ params: { path: { user_id, task_id } } });

const created = await api.POST("/api/{user_id}/tasks", {
  ...tasks,
  body: { title: "Written by the typed client", description: "from TypeScript" },
});
if (created.data === undefined || created.response.status !== 201)
  fail("create", created.response.status, created.error);
const kept = created.data;

const listed = await api.GET("/api/{user_id}/tasks", {
  params: { path: { user_id }, query: { status: "pending", limit: 50 } },
});
if (listed.data === undefined) fail("list", listed.response.status, listed.error);
if (!listed.data.some((each) => each.id === kept.id)) throw new Error("list: the new task is missing");
const totalCount = Number(listed.response.headers.get("X-Total-Count"));

const toggled = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", task(kept.id));
if (toggled.data === undefined) fail("toggle", toggled.response.status, toggled.error);
if (!toggled.data.completed) throw new Error("toggle: the task is still pending");

// Every field sent: the contract's PUT takes this whole shape, today and if it grows lenient.
const updated = await api.PUT("/api/{user_id}/tasks/{task_id}", {
  ...task(kept.id),
  body: { title: "Rewritten by the typed client", description: null, completed: true },
});
if (updated.data === undefined) fail("update", updated.response.status, updated.error);
if (updated.data.title !== "Rewritten by the typed client" || updated.data.description !== null)
  throw new Error(`update: the answer is not the new content: ${JSON.stringify(updated.data)}`);

const doomed = await api.POST("/api/{user_id}/tasks", { ...tasks, body: { title: "To delete" } });
if (doomed.data === undefined) fail("create", doomed.response.status, doomed.error);
const deleted = await api.DELETE("/api/{user_id}/tasks/{task_id}", task(doomed.data.id));
if (deleted.response.status !== 204) fail("delete", deleted.response.status, deleted.error);

const gone = await api.GET("/api/{user_id}/tasks/{task_id}", task(doomed.data.id));
if (gone.response.status !== 404 || gone.error?.status !== 404)
  throw new Error(`get after delete: expected a 404 problem, got HTTP ${gone.response.status}`);

console.log(
  JSON.stringify({
    kept: updated.data,
    deleted: doomed.data.id,
    totalCount,
    notFoundDetail: gone.error.detail,
  }),
);
