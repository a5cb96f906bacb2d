// Swagger UI at /docs in headless Chromium (playwright-core, the system Chromium): the page
// renders under its CSP, the Authorize button runs oxidp's authorization-code flow with PKCE as
// the built-in public client oxidp-api through a popup, and "Try it out" on GET /users/me then
// answers 200 with the signed-in user's email. Started by scripts/swagger/run.sh, which passes:
//   SWAGGER_ISSUER, SWAGGER_EMAIL, SWAGGER_PASSWORD, SWAGGER_CHROMIUM, SWAGGER_PROFILE, SWAGGER_SCREENSHOT
// Prints "ok - …" or "FAIL - …" per check and closes with "swagger: N passed, M failed".

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const issuer = required("SWAGGER_ISSUER");
const email = required("SWAGGER_EMAIL");
const password = required("SWAGGER_PASSWORD");
const executablePath = process.env.SWAGGER_CHROMIUM || "/usr/bin/chromium";
const screenshot = process.env.SWAGGER_SCREENSHOT || "/tmp/swagger.png";
const STEP_TIMEOUT = 15_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.log(`FAIL - environment: ${name} is not set`);
    console.log("swagger: 0 passed, 1 failed");
    process.exit(1);
  }
  return value;
}

let passed = 0;
let failed = 0;
function ok(name) {
  passed += 1;
  console.log(`ok - ${name}`);
}
function fail(name, detail) {
  failed += 1;
  console.log(`FAIL - ${name}: ${detail}`);
}
/** Runs one check; a failure ends the run (later checks depend on it). */
async function check(name, body) {
  try {
    const detail = await body();
    ok(detail ? `${name} (${detail})` : name);
  } catch (error) {
    fail(name, String(error?.message ?? error).split("\n")[0]);
    throw new StopRun();
  }
}
class StopRun extends Error {}

// Everything the browser reports that points at a blocked resource or a broken page.
const problems = [];
const tokenRequests = [];
const authorizeRequests = [];
function watch(page, label) {
  page.on("console", (message) => {
    const text = message.text();
    if (/Content[- ]Security[- ]Policy|Refused to (load|execute|apply|connect|frame|evaluate)/i.test(text)) {
      problems.push(`[${label}] CSP: ${text}`);
    } else if (message.type() === "error") {
      // The browser's own favicon request is no part of the page.
      const where = message.location()?.url ?? "";
      if (!where.endsWith("/favicon.ico")) problems.push(`[${label}] console error: ${text} (${where})`);
    }
  });
  page.on("pageerror", (error) => problems.push(`[${label}] page error: ${error.message}`));
  page.on("requestfailed", (request) => {
    problems.push(`[${label}] request failed: ${request.method()} ${request.url()} ${request.failure()?.errorText ?? ""}`);
  });
  page.on("response", (response) => {
    const url = new URL(response.url());
    if (url.pathname === "/token") {
      tokenRequests.push(`${response.request().method()} ${url.pathname} → ${response.status()}`);
    }
  });
}
// CSP violations as the page itself sees them, beyond what reaches the console.
const CSP_LISTENER = `
  window.__cspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
  });
`;

// A fresh user-data directory for every run.
const profile = process.env.SWAGGER_PROFILE || mkdtempSync(join(tmpdir(), "swagger-chromium-"));
rmSync(profile, { recursive: true, force: true });
mkdirSync(profile, { recursive: true });
let context;
let page;
let focus; // the page the screenshot shows
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 1000 },
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  await context.addInitScript(CSP_LISTENER);
  context.on("request", (request) => {
    if (new URL(request.url()).pathname === "/authorize") authorizeRequests.push(request.url());
  });
  page = context.pages()[0] ?? (await context.newPage());
  watch(page, "docs");
  focus = page;

  await check("GET /docs renders the operations", async () => {
    const response = await page.goto(`${issuer}/docs`, { waitUntil: "load" });
    if (response.status() !== 200) throw new Error(`status ${response.status()}`);
    const csp = response.headers()["content-security-policy"] ?? "";
    if (!/script-src 'sha256-/.test(csp)) throw new Error(`no hash-based script-src in the CSP: ${csp}`);
    await page.locator(".opblock-summary-path", { hasText: /^\/users\/me$/ }).first().waitFor();
    const count = await page.locator(".opblock").count();
    return `${count} operations`;
  });

  await check("no CSP violation or script error on /docs", async () => {
    await page.waitForTimeout(500);
    const seen = await page.evaluate(() => window.__cspViolations ?? []);
    const all = [...problems, ...seen.map((v) => `[docs] securitypolicyviolation: ${v}`)];
    if (all.length) throw new Error(all.join(" | "));
  });

  await check("Authorize opens the dialog with the OAuth2 flow", async () => {
    await prepareAuthorize(page);
    return "client_id oxidp-api, scopes account openid";
  });

  let popup;
  await check("the popup goes to /authorize with PKCE and on to /login", async () => {
    const [opened] = await Promise.all([
      context.waitForEvent("page"),
      oauth2Section().locator("button.authorize", { hasText: /^Authorize$/ }).click(),
    ]);
    popup = opened;
    watch(popup, "popup");
    await popup.waitForURL((u) => u.pathname === "/login");
    const first = authorizeRequests[0];
    if (!first) throw new Error(`the popup never asked /authorize; it is at ${popup.url()}`);
    const url = new URL(first);
    if (url.origin + url.pathname !== `${issuer}/authorize`) throw new Error(`opened ${first}`);
    const q = url.searchParams;
    const expect = {
      response_type: "code",
      client_id: "oxidp-api",
      redirect_uri: `${issuer}/docs/oauth-receiver.html`,
      code_challenge_method: "S256",
    };
    for (const [name, value] of Object.entries(expect)) {
      if (q.get(name) !== value) throw new Error(`${name}=${q.get(name)} in ${first}`);
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(q.get("code_challenge") ?? "")) throw new Error(`code_challenge ${q.get("code_challenge")}`);
    if (!q.get("state")) throw new Error("no state");
    const scopes = (q.get("scope") ?? "").split(" ");
    if (!scopes.includes("account") || !scopes.includes("openid")) throw new Error(`scope=${q.get("scope")}`);
    await popup.locator("input[name='email']").waitFor();
    return `scope=${q.get("scope")}`;
  });

  await check("signing in returns the popup to /docs/oauth-receiver.html, which closes", async () => {
    const visited = [];
    popup.on("framenavigated", (frame) => {
      if (frame === popup.mainFrame()) visited.push(frame.url());
    });
    const closed = popup.waitForEvent("close", { timeout: STEP_TIMEOUT });
    await popup.locator("input[name='email']").fill(email);
    await popup.locator("input[name='password']").fill(password);
    await popup.locator("form button[type='submit'], form input[type='submit']").first().click();
    try {
      await closed;
    } catch {
      let where = "(gone)";
      try {
        where = `${popup.url()}: ${(await popup.locator("body").innerText()).slice(0, 200).replace(/\s+/g, " ")}`;
      } catch {}
      throw new Error(`the popup did not close; it shows ${where}`);
    }
    const receiver = visited.find((u) => u.startsWith(`${issuer}/docs/oauth-receiver.html?`));
    if (!receiver) throw new Error(`no visit to the receiver: ${visited.join(" → ")}`);
    const q = new URL(receiver).searchParams;
    if (!q.get("code") || !q.get("state")) throw new Error(`receiver got ${receiver}`);
    return visited.map((u) => new URL(u).pathname).join(" → ");
  });

  await check("the dialog shows the token was obtained", async () => {
    const section = oauth2Section();
    // Swagger exchanges the code at /token (same origin) and then offers "Logout".
    try {
      await section.locator("button", { hasText: /^Logout$/ }).waitFor();
    } catch {
      const errors = await section.locator(".errors").allInnerTexts().catch(() => []);
      throw new Error(`not authorized; /token: ${tokenRequests.join(", ") || "never called"}; errors: ${errors.join(" ") || "none"}`);
    }
    const text = await section.innerText();
    if (!/Authorized/.test(text)) throw new Error(`the section says: ${text.replace(/\s+/g, " ").slice(0, 200)}`);
    if (!tokenRequests.some((r) => r === "POST /token → 200")) throw new Error(`token requests: ${tokenRequests.join(", ")}`);
    await page.locator(".modal-ux button.btn-done, .modal-ux button.close-modal").first().click();
    await page.locator(".modal-ux").waitFor({ state: "detached" });
    return tokenRequests.join(", ");
  });

  await check("Try it out on GET /users/me answers 200 with the user's email", async () => {
    const block = page.locator(".opblock-get", { has: page.locator(".opblock-summary-path", { hasText: /^\/users\/me$/ }) }).first();
    await block.locator(".opblock-summary").click();
    await block.locator("button.try-out__btn").click();
    const [response] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === "/api/v1/users/me" && r.request().method() === "GET"),
      block.locator("button.execute").click(),
    ]);
    const authorization = (await response.request().allHeaders())["authorization"] ?? "";
    if (!/^Bearer \S+/.test(authorization)) throw new Error(`sent Authorization: ${JSON.stringify(authorization)}`);
    const live = block.locator(".live-responses-table .response");
    await live.first().waitFor();
    const status = (await live.locator(".response-col_status").first().innerText()).trim();
    const body = await live.locator(".response-col_description").first().innerText();
    if (status !== "200") throw new Error(`status shown ${status}: ${body.slice(0, 300)}`);
    if (!body.includes(email)) throw new Error(`the body shown lacks ${email}: ${body.slice(0, 300)}`);
    await live.first().scrollIntoViewIfNeeded();
    return `status ${status}, ${email}`;
  });

  await check("no CSP violation or script error during the flow", async () => {
    const seen = await page.evaluate(() => window.__cspViolations ?? []);
    const all = [...problems, ...seen.map((v) => `[docs] securitypolicyviolation: ${v}`)];
    if (all.length) throw new Error(all.join(" | "));
  });

  // Swagger derives its redirect URI from the address the page was loaded with; a deep link
  // (deepLinking is on, so expanding an operation puts one in the address bar) must not change it.
  await check("Authorize from a deep link /docs#/Me/get_me uses the registered redirect URI", async () => {
    const deep = await context.newPage();
    watch(deep, "deep link");
    focus = deep;
    await deep.goto(`${issuer}/docs#/Me/get_me`, { waitUntil: "load" });
    const section = await prepareAuthorize(deep);
    authorizeRequests.length = 0;
    const [popup] = await Promise.all([
      context.waitForEvent("page"),
      section.locator("button.authorize", { hasText: /^Authorize$/ }).click(),
    ]);
    watch(popup, "deep-link popup");
    await popup.waitForURL((u) => u.pathname !== "/" && !u.href.startsWith("about:")).catch(() => {});
    const asked = authorizeRequests[0];
    if (!asked) throw new Error(`the popup never asked /authorize; it is at ${popup.url()}`);
    const redirect = new URL(asked).searchParams.get("redirect_uri");
    if (redirect !== `${issuer}/docs/oauth-receiver.html`) {
      if (!popup.isClosed()) await popup.close();
      throw new Error(`redirect_uri=${redirect}`);
    }
    // The browser session from the first sign-in carries the flow through without a form.
    await popup.waitForEvent("close").catch(() => {});
    if (!popup.isClosed()) throw new Error(`the popup did not close; it is at ${popup.url()}`);
    await section.locator("button", { hasText: /^Logout$/ }).waitFor();
    await deep.close();
    focus = page;
    return "redirect_uri unchanged, authorized through the existing session";
  });
} catch (error) {
  if (!(error instanceof StopRun)) fail("browser", String(error?.message ?? error).split("\n")[0]);
  if (problems.length) console.log(`browser reported: ${problems.join(" | ")}`);
} finally {
  if (focus) {
    try {
      await focus.screenshot({ path: screenshot, fullPage: false });
      console.log(`screenshot: ${screenshot}`);
    } catch (error) {
      console.log(`screenshot failed: ${error.message}`);
    }
  }
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}

console.log(`swagger: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);

function oauth2Section(on = page) {
  return on.locator(".modal-ux .auth-container", { has: on.locator("h4", { hasText: /oauth2/i }) });
}

/** Opens the Authorize dialog on `on`, fills client_id when empty and ticks account and openid. */
async function prepareAuthorize(on) {
  await on.locator(".auth-wrapper button.authorize").click();
  const section = oauth2Section(on);
  await section.waitFor();
  const clientId = section.locator("input[id^='client_id']");
  if ((await clientId.inputValue()) === "") await clientId.fill("oxidp-api");
  const value = await clientId.inputValue();
  if (value !== "oxidp-api") throw new Error(`client_id is ${JSON.stringify(value)}`);
  for (const scope of ["account", "openid"]) {
    const box = section.locator(`input[type='checkbox'][data-value='${scope}']`);
    if (!(await box.isChecked())) await section.locator(`label[for='${await box.getAttribute("id")}']`).click();
    if (!(await box.isChecked())) throw new Error(`scope ${scope} is not ticked`);
  }
  return section;
}

