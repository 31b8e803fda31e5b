/**
 * Removes secrets from text before it reaches Slack, a terminal, a log or the
 * audit trail: known secret values (the bot's own tokens) and anything that
 * looks like a credential (tokens, bearer headers, private keys, kubeconfig
 * credentials, passwords in URLs and key=value pairs).
 */

/** Redacts a piece of text. Pure; safe to call on any string. */
export type Redactor = (text: string) => string;

const MASK = '[REDACTED]';

const PATTERNS: Array<[RegExp, string]> = [
  // PEM private keys, possibly multi-line, JSON-escaped ("\n"), or truncated at the end of an excerpt.
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, `${MASK} private key`],
  // Basic and Bearer credentials wherever they are written (HTTP headers, hosts.toml header lists).
  [/\b(basic|bearer)(\s+)[A-Za-z0-9+/=._~-]{8,}/gi, `$1$2${MASK}`],
  // Environment variables and settings whose name says they hold a secret (DB_PASSWORD=, AZURE_CLIENT_SECRET=, NGC_API_KEY=…).
  [/\b([A-Z][A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*\s*=\s*)(?!\[REDACTED)[^\s"',;]+/g, `$1${MASK}`],
  // Azure connection strings and SAS signatures.
  [/\b((?:AccountKey|SharedAccessKey|SharedAccessSignature|sig)=)[^;\s&"']+/g, `$1${MASK}`],
  // kubeadm join credentials.
  [/(--(?:token|certificate-key)[=\s]+)[^\s"']+/g, `$1${MASK}`],
  // Slack tokens (bot, user, app-level, config) and webhook URLs.
  [/\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{8,}/g, MASK],
  [/https:\/\/hooks\.slack\.com\/[^\s"']+/g, MASK],
  // Authorization headers and bearer tokens.
  [/\b(authorization\s*[:=]\s*)(?:bearer|basic|token)?\s*[^\s"',;]+/gi, `$1${MASK}`],
  [/\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, `$1${MASK}`],
  // JSON web tokens (Kubernetes service-account tokens among them).
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, MASK],
  // kubeconfig, YAML/JSON/TOML credentials (docker config "auth", containerd registry auth/identitytoken, cloud key files).
  [/\b((?:client-key-data|client-certificate-data|token|id-token|refresh-token|access-token|identitytoken|identity_token|auth|password|passwd|secret|client-secret|client_secret|private_key_id|aws_secret_access_key|aws_session_token|api[_-]?key|signing[_-]?secret)["']?\s*[:=]\s*["']?)[^\s"',;}]+/gi, `$1${MASK}`],
  // Credentials inside URLs.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi, `$1${MASK}@`],
  // Cloud and forge tokens with recognisable prefixes.
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, MASK],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}\b/g, MASK],
  [/\bglpat-[A-Za-z0-9_-]{20,}\b/g, MASK],
  [/\bnvapi-[A-Za-z0-9_-]{20,}/g, MASK],
  [/\bya29\.[A-Za-z0-9_-]{20,}/g, MASK],
  [/\bhf_[A-Za-z0-9]{30,}\b/g, MASK],
  [/\bdckr_pat_[A-Za-z0-9_-]{20,}/g, MASK],
  [/\bhvs\.[A-Za-z0-9_-]{20,}/g, MASK],
];

/**
 * Builds a redactor that also masks the given known secret values wherever
 * they appear (values shorter than 6 characters are ignored: too likely to
 * mask ordinary words).
 */
export function createRedactor(knownSecrets: Iterable<string | undefined> = []): Redactor {
  const known = [...knownSecrets].filter((s): s is string => typeof s === 'string' && s.length >= 6);
  known.sort((a, b) => b.length - a.length);
  return (text: string): string => {
    let out = text;
    for (const secret of known) out = out.split(secret).join(MASK);
    for (const [re, replacement] of PATTERNS) out = out.replace(re, replacement);
    return out;
  };
}

/** Pattern-only redactor, for places that have no configuration at hand. */
export const redact: Redactor = createRedactor();
