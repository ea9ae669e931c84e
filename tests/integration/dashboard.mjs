// The dashboard in a real browser (Debian's chromium, driven by puppeteer-core over the DevTools
// protocol): run by dashboard.sh with SERVE_URL, SERVE_KEY, STOPPED_MODEL, SHOTS (a directory for
// the screenshots) and PUPPETEER_PKG in the environment. Prints "ok: ..." per check; exits 1 at
// the first that fails.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const puppeteer = require(process.env.PUPPETEER_PKG);

const url = process.env.SERVE_URL, key = process.env.SERVE_KEY, model = process.env.STOPPED_MODEL, shots = process.env.SHOTS;
const ok = (what) => console.log("ok: " + what);
const fail = async (what) => {
  console.log("FAIL: " + what);
  try { await page.screenshot({ path: shots + "/failure.png", fullPage: true }); } catch (_) {}
  await browser.close();
  process.exit(1);
};

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--window-size=1280,900"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 900 });
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));

// waitText(selector, predicate, ms): the element's text, once predicate(text) holds.
async function waitText(selector, predicate, ms, what) {
  const until = Date.now() + ms;
  let text = "";
  while (Date.now() < until) {
    text = await page.$eval(selector, (e) => e.textContent).catch(() => "");
    if (predicate(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  await fail(what + " (" + selector + " was: " + JSON.stringify(text.slice(-400)) + ")");
}

async function useKey(k) {
  await page.$eval("#key", (e) => { e.value = ""; });
  await page.type("#key", k);
  await page.click("#use-key");
}

const res = await page.goto(url + "/ui", { waitUntil: "load" });
if (res.status() !== 200) await fail("GET /ui answered " + res.status());
ok("the page loads without a key");

// A wrong key: the page says the gateway refused it (401).
await useKey("not-the-key");
await waitText("#error", (t) => t.includes("HTTP 401"), 10000, "no 401 message for a wrong key");
ok("a wrong key shows the 401 message");
await page.screenshot({ path: shots + "/dashboard-401.png" });

// The right key: every configured model is listed.
await useKey(key);
const names = (process.env.EXPECT_MODELS || "").split(",");
for (const n of names) await waitText("#models", (t) => t.includes(n), 10000, "model " + n + " not listed");
await waitText("#error", (t) => t === "", 10000, "the error stayed after the right key");
ok("the page lists the configured models: " + names.join(", "));

// Start on a stopped model: its row turns running within its startup time.
const row = "#model-" + model;
await waitText(row + " .status", (t) => t === "stopped", 10000, model + " is not shown stopped");
await page.click(row + ' button[data-action="start"]');
await waitText(row + " .status", (t) => t === "running", 30000, model + " did not turn running after start");
ok(model + " started from the page");

// Its log, streamed: the start's lines, then a line the server writes after (a chat from the
// page's own chat box makes the mock log its request), without a reload.
await page.click(row + " td");
await waitText("#log", (t) => t.includes("model loaded"), 10000, "the log pane did not show " + model + "'s log");
await page.select("#chat-model", model);
await page.type("#chat-input", "hello from the browser");
await page.click("#chat-send");
await waitText("#chat-output", (t) => t.includes("hello from the browser"), 20000, "the chat box got no answer");
ok("the chat box streamed an answer");
await waitText("#log", (t) => t.includes("POST /v1/chat/completions"), 10000, "the log pane did not show the server's new line");
ok("the log pane shows a line the server wrote, without a reload");
await waitText("#events", (t) => t.includes(model) && t.includes("ready"), 10000, "the events pane did not show " + model + " ready");
ok("the events pane shows the start");
await page.screenshot({ path: shots + "/dashboard.png" });

// Stop from the page.
await page.click(row + ' button[data-action="stop"]');
await waitText(row + " .status", (t) => t === "stopped", 30000, model + " did not turn stopped after stop");
ok(model + " stopped from the page");

if (consoleErrors.length) await fail("script errors on the page: " + consoleErrors.join("; "));
await browser.close();
