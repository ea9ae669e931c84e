// node openai_client.mjs MODE: the official `openai` package for Node (installed by
// tests/tools/npm-install.sh) against `llmctl serve`. Prints "ok: CHECK" for each check that
// holds and "FAIL: CHECK: why" for each that does not (every check runs); exits 1 if any failed.
//   MODE all:          a streamed chat completion (its deltas joined must be the echoed prompt,
//                      arriving over time), a whole one, the stream helper, the model list, an
//                      embedding (the client's default base64 and explicit floats: 8 numbers), a
//                      legacy completion (whole and streamed).
//   MODE unauthorized: every call raises AuthenticationError, status 401, code invalid_api_key.
// Environment: OPENAI_PKG (the package's directory), SERVE_URL, CLIENT_KEY (the API key sent;
// "none" unless set), CHAT_MODEL, EMBED_MODEL, EXPECT_MODELS (names, comma-separated), and
// MIN_STREAM_MS (the least time from the stream's first delta to its last: a paced upstream's
// stream must reach the client piece by piece, not in one buffer; 0 to skip).
import path from "node:path";
import { pathToFileURL } from "node:url";

// An ES module resolves bare imports from its own location, never from NODE_PATH: the package
// lives in the build dir's npm prefix, so it is imported by its absolute path.
const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const pkg = await import(pathToFileURL(path.join(env("OPENAI_PKG"), "index.mjs")).href);
const { default: OpenAI, AuthenticationError } = pkg;

const mode = process.argv[2] ?? "all";
const chatModel = env("CHAT_MODEL", "m1");
const embedModel = env("EMBED_MODEL", chatModel);
const client = new OpenAI({
  baseURL: env("SERVE_URL") + "/v1",
  apiKey: env("CLIENT_KEY", "none"),
  maxRetries: 0, // a retry would hide a failed request
  timeout: 60_000,
});

let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL: ${name}: ${e?.stack ?? e}`);
  }
}
function expect(cond, why) {
  if (!cond) throw new Error(why);
}
const show = (v) => JSON.stringify(v);
const user = (content) => [{ role: "user", content }];
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
function expectEmbedding(e, what) {
  expect(Array.isArray(e) && e.length === 8, `${what}: not 8 numbers: ${show(e)}`);
  expect(e.every((x) => typeof x === "number" && Number.isFinite(x)), `${what}: not all finite numbers: ${show(e)}`);
  // The mock scales its vectors to length 1, as OpenAI does.
  expect(Math.abs(norm(e) - 1) < 1e-4, `${what}: length ${norm(e)}, not 1: ${show(e)}`);
}

if (mode === "all") {
  await check("chat stream", async () => {
    const prompt = "streamed through llmctl serve: héllo wörld ✓ done";
    const stream = await client.chat.completions.create({ model: chatModel, messages: user(prompt), stream: true });
    let text = "";
    let deltas = 0;
    let finish = null;
    let first = 0;
    let last = 0;
    for await (const chunk of stream) {
      expect(chunk.object === "chat.completion.chunk", `chunk object ${show(chunk.object)}`);
      for (const c of chunk.choices ?? []) {
        if (c.delta?.content) {
          text += c.delta.content;
          deltas++;
          last = performance.now();
          if (!first) first = last;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    expect(text === prompt, `deltas joined ${show(text)}, want ${show(prompt)}`);
    expect(deltas > 1, `${deltas} delta(s): not a stream`);
    expect(finish === "stop", `finish_reason ${show(finish)}`);
    const spread = last - first;
    const min = Number(env("MIN_STREAM_MS", "0"));
    expect(spread >= min, `the deltas arrived within ${spread.toFixed(0)} ms (want >= ${min}): buffered, not streamed`);
  });

  await check("chat whole", async () => {
    const prompt = "a whole answer, please";
    const r = await client.chat.completions.create({ model: chatModel, messages: user(prompt) });
    expect(r.object === "chat.completion", `object ${show(r.object)}`);
    expect(r.choices?.[0]?.message?.content === prompt, `content ${show(r.choices?.[0]?.message)}, want ${show(prompt)}`);
    expect(r.choices[0].message.role === "assistant", `role ${show(r.choices[0].message.role)}`);
    expect(r.choices[0].finish_reason === "stop", `finish_reason ${show(r.choices[0].finish_reason)}`);
    expect(r.usage?.completion_tokens > 0, `usage ${show(r.usage)}`);
  });

  // v4 keeps the helper that assembles a stream under beta.
  await check("chat stream helper", async () => {
    const prompt = "the stream helper assembles this";
    const runner = client.beta.chat.completions.stream({ model: chatModel, messages: user(prompt) });
    const final = await runner.finalChatCompletion();
    expect(final.choices?.[0]?.message?.content === prompt, `final ${show(final.choices?.[0]?.message)}`);
  });

  await check("models", async () => {
    const page = await client.models.list();
    const ids = page.data.map((m) => m.id);
    for (const want of env("EXPECT_MODELS", chatModel).split(",")) expect(ids.includes(want), `${want} not in ${show(ids)}`);
    expect(page.data.every((m) => m.object === "model"), `objects ${show(page.data)}`);
  });

  // The client asks for base64 unless told otherwise, and decodes it into float32 numbers.
  let floats = null;
  await check("embedding float", async () => {
    const r = await client.embeddings.create({ model: embedModel, input: "embed me", encoding_format: "float" });
    expect(r.object === "list" && r.data?.length === 1, `response ${show(r)}`);
    expectEmbedding(r.data[0].embedding, "float");
    floats = r.data[0].embedding;
    const two = await client.embeddings.create({ model: embedModel, input: ["one", "two"], encoding_format: "float" });
    expect(two.data?.length === 2, `two inputs: ${show(two.data)}`);
    two.data.forEach((d, i) => expectEmbedding(d.embedding, `input ${i}`));
    expect(show(two.data[0].embedding) !== show(two.data[1].embedding), "two texts, one vector");
  });

  await check("embedding default (base64)", async () => {
    const r = await client.embeddings.create({ model: embedModel, input: "embed me" });
    expect(r.data?.length === 1, `response ${show(r)}`);
    expectEmbedding(r.data[0].embedding, "base64");
    if (floats)
      expect(r.data[0].embedding.every((x, i) => Math.abs(x - floats[i]) < 1e-6),
             `${show(r.data[0].embedding)} differs from the float answer ${show(floats)}`);
  });

  await check("completion whole", async () => {
    const prompt = "a legacy completion";
    const r = await client.completions.create({ model: chatModel, prompt, max_tokens: 64 });
    expect(r.object === "text_completion", `object ${show(r.object)}`);
    expect(r.choices?.[0]?.text === prompt, `text ${show(r.choices?.[0])}, want ${show(prompt)}`);
  });

  await check("completion stream", async () => {
    const prompt = "a streamed legacy completion";
    const stream = await client.completions.create({ model: chatModel, prompt, max_tokens: 64, stream: true });
    let text = "";
    for await (const chunk of stream) for (const c of chunk.choices ?? []) text += c.text ?? "";
    expect(text === prompt, `text ${show(text)}, want ${show(prompt)}`);
  });
} else if (mode === "unauthorized") {
  const refused = async (what, call) => {
    await check(`401 ${what}`, async () => {
      let err = null;
      try {
        const r = await call();
        if (r && typeof r[Symbol.asyncIterator] === "function") for await (const _ of r);
      } catch (e) {
        err = e;
      }
      expect(err !== null, "no error raised");
      expect(err instanceof AuthenticationError, `raised ${err?.constructor?.name}: ${err?.message}`);
      expect(err.status === 401, `status ${err.status}`);
      expect(err.code === "invalid_api_key", `code ${show(err.code)} (error ${show(err.error)})`);
    });
  };
  await refused("models", () => client.models.list());
  await refused("chat stream", () => client.chat.completions.create({ model: chatModel, messages: user("x"), stream: true }));
  await refused("chat whole", () => client.chat.completions.create({ model: chatModel, messages: user("x") }));
  await refused("embedding", () => client.embeddings.create({ model: embedModel, input: "x" }));
} else {
  console.log(`FAIL: unknown mode ${show(mode)}`);
  failed++;
}
process.exit(failed ? 1 : 0);
