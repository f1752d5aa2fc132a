// Drives one sandbox tenant with Qlik's own client, @qlik/api (its generated
// TypeScript client of the Qlik Cloud REST APIs), through every e-mail
// configuration call, and checks that each answer has the types the client's
// declarations (transports.d.ts) give it: an object, each declared field of its
// declared type. Prints one JSON document: the calls
// and their answers, and the problems found (none: exit 0), as the last line
// of stdout (the client prints its own notices there, such as deprecations).
//
//   QLIK_SANDBOX='{"host": ..., "apiKey": ..., "smtp": {...}}' node qlik_api_client.mjs
import transports from "@qlik/api/transports";

const given = JSON.parse(process.env.QLIK_SANDBOX);
const hostConfig = { authType: "apikey", host: given.host, apiKey: given.apiKey };
const options = { hostConfig };
const calls = [];
const problems = [];
// Fields an answer has beyond its declared type: TypeScript types are open, the
// client passes them through; the real API sends a few (`_id`, `accepted`, ...).
const extras = new Set();

// The fields of each answer type in transports.d.ts, and their JavaScript types.
const SHAPES = {
  GetEmailConfig: {
    authFailures: "number", emailAddress: "string", errorCode: "string", isValid: "boolean",
    lastUpdated: "string", modificationTime: "string", passwordExists: "boolean",
    providerConfig: "object", securityType: "string", serverAddress: "string",
    serverPort: "number", serviceProvider: "string", status: "object", tenantId: "string",
    username: "string",
  },
  GetBasicAuthConfig: {
    emailAddress: "string", securityType: "string", senderName: "string",
    serverAddress: "string", serverPort: "number", username: "string",
  },
  SmtpConfigStatus: { statusCode: "number", statusReason: "string" },
  SmtpCheck: { errorCode: "string", isValid: "boolean" },
  SmtpResult: {
    connectionFailed: "boolean", message: "string", smtpResponseCode: "number",
    success: "boolean",
  },
};

function check(value, shape, where) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    problems.push(`${where}: not an object: ${JSON.stringify(value)}`);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    const wanted = SHAPES[shape][key];
    if (wanted === undefined) {
      extras.add(`${shape}.${key}`);
    } else if (item !== null && typeof item !== wanted) {
      problems.push(`${where}.${key}: ${typeof item}, ${shape} says ${wanted}`);
    }
  }
}

function checkConfig(data, where) {
  check(data, "GetEmailConfig", where);
  if (data?.status) check(data.status, "SmtpConfigStatus", `${where}.status`);
  if (data?.providerConfig) check(data.providerConfig, "GetBasicAuthConfig", `${where}.providerConfig`);
}

async function call(name, run, shape) {
  try {
    const response = await run();
    calls.push({ name, status: response.status, data: response.data ?? null });
    if (shape) shape(response.data, name);
    return response;
  } catch (error) {
    // The client throws for an answer it does not expect (an error status, a
    // body it cannot parse).
    calls.push({ name, error: String(error?.message ?? error), status: error?.status ?? null });
    problems.push(`${name}: ${error?.message ?? error}`);
    return null;
  }
}

const smtp = given.smtp;
const put = {
  serviceProvider: "BasicAuth",
  providerConfig: {
    serverAddress: smtp.host, serverPort: smtp.port, securityType: smtp.securityType,
    username: smtp.username, emailPassword: smtp.password,
    emailAddress: smtp.emailAddress, senderName: "Qlik's client",
  },
};

await call("get (none)", () => transports.getEmailConfig(options), checkConfig);
await call("put", () => transports.updateEmailConfig(put, options));
await call("get", () => transports.getEmailConfig(options), checkConfig);
await call("validate", () => transports.validateEmailConfig(options),
  (data, where) => check(data, "SmtpCheck", where));
await call("verify", () => transports.verifyEmailConfigConnection(options),
  (data, where) => check(data, "SmtpResult", where));
await call("test e-mail", () => transports.sendTestEmail(
  { recipient: given.recipient, subject: "From Qlik's client", body: "Sent by @qlik/api." },
  options,
), (data, where) => check(data, "SmtpResult", where));
await call("patch", () => transports.patchEmailConfig(
  [{ op: "replace", path: "/username", value: smtp.username }], options,
));
await call("get (patched)", () => transports.getEmailConfig(options), checkConfig);
await call("delete", () => transports.deleteEmailConfig(options));
await call("get (deleted)", () => transports.getEmailConfig(options), checkConfig);

console.log(JSON.stringify({ calls, problems, extras: [...extras].sort() }));
process.exit(problems.length ? 1 : 0);
