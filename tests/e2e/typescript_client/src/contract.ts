// Type-level checks, compiled by `tsc` and never run: calls the contract forbids must not
// compile. If the generated types stopped encoding the contract, a directive below would have
// nothing to expect and `tsc` would fail with "Unused '@ts-expect-error' directive".
import { tasksClient } from "./client.js";

export async function callsTheContractForbids(api: ReturnType<typeof tasksClient>) {
  const path = { params: { path: { user_id: "alice" } } };
  // @ts-expect-error: a title is required to create a task
  await api.POST("/api/{user_id}/tasks", { ...path, body: { description: "no title" } });
  // @ts-expect-error: a title is text
  await api.POST("/api/{user_id}/tasks", { ...path, body: { title: 42 } });
  // @ts-expect-error: no such path
  await api.GET("/api/{user_id}/todos", path);
  // @ts-expect-error: a task id is a number
  await api.GET("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: "a", task_id: "1" } } });
  // @ts-expect-error: status is one of all, pending, completed
  await api.GET("/api/{user_id}/tasks", { params: { path: { user_id: "a" }, query: { status: "done" } } });
  // @ts-expect-error: tasks are not replaced by PATCH on their own path
  await api.PATCH("/api/{user_id}/tasks/{task_id}", { params: { path: { user_id: "a", task_id: 1 } } });
}
