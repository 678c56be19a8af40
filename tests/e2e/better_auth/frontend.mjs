// Two real Better Auth instances, as a Next.js frontend runs them: email-and-password sign-in, the
// JWT plugin (EdDSA keys, published at /api/auth/jwks) and the bearer plugin (the session token in
// `set-auth-token`, accepted as `Authorization: Bearer`), on an in-memory database.
// "frontend" is the one the Tasks API trusts; "stranger" has keys of its own.
// Prints {"frontend": url, "stranger": url} once both listen; exits when stdin closes.
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer } from "better-auth/plugins/bearer";
import { jwt } from "better-auth/plugins/jwt";

async function readJson(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString() || "{}");
}

async function startInstance(name) {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseURL = `http://127.0.0.1:${server.address().port}`;
  const auth = betterAuth({
    baseURL,
    secret: `tasks-api-e2e-${name}-secret-of-more-than-32-bytes`,
    database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
    emailAndPassword: { enabled: true },
    plugins: [jwt(), bearer()],
    telemetry: { enabled: false },
  });
  const betterAuthHandler = toNodeHandler(auth);
  server.on("request", async (request, response) => {
    // Test-only: a token signed with this instance's real key that expired an hour ago.
    if (request.method === "POST" && request.url === "/test/expired-token") {
      const { sub } = await readJson(request);
      const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
      const { token } = await auth.api.signJWT({
        body: { payload: { sub, iat: anHourAgo - 900, exp: anHourAgo } },
      });
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ token }));
      return;
    }
    betterAuthHandler(request, response);
  });
  return baseURL;
}

const frontend = await startInstance("frontend");
const stranger = await startInstance("stranger");
process.stdout.write(`${JSON.stringify({ frontend, stranger })}\n`);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
