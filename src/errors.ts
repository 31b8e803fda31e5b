/**
 * Coded errors. Every message says what to fix and names the variable, file,
 * node or rule involved; none carries a token, a private key or a raw
 * response body.
 */

/** Stable error codes (public: they appear in `--json` output and logs). */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'INVENTORY_INVALID'
  | 'CATALOG_INVALID'
  | 'NODE_NAME_INVALID'
  | 'NODE_UNKNOWN'
  | 'KEY_FILE_UNREADABLE'
  | 'HOST_KEY_UNKNOWN'
  | 'HOST_KEY_MISMATCH'
  | 'HOST_IDENTITY_MISMATCH'
  | 'SSH_AUTH_FAILED'
  | 'SSH_UNREACHABLE'
  | 'SSH_TIMEOUT'
  | 'SSH_CONNECTION_LOST'
  | 'KUBE_FORBIDDEN'
  | 'KUBE_UNAUTHORIZED'
  | 'KUBE_UNREACHABLE'
  | 'KUBE_ERROR'
  | 'FINDING_UNKNOWN'
  | 'NO_RUNBOOK'
  | 'LOCK_HELD'
  | 'AUDIT_UNWRITABLE'
  | 'AUDIT_TAMPERED'
  | 'BUSY'
  | 'STORE_ERROR';

/** Process exit status the CLI uses for each class of error. */
export const EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3, failed: 4 } as const;

/** Base class: a message for humans, a code for machines, an optional hint. */
export class NodediagError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** Exit status for the CLI. */
  get exitCode(): number {
    switch (this.code) {
      case 'HOST_KEY_UNKNOWN':
      case 'HOST_KEY_MISMATCH':
      case 'HOST_IDENTITY_MISMATCH':
      case 'SSH_AUTH_FAILED':
      case 'SSH_UNREACHABLE':
      case 'SSH_TIMEOUT':
      case 'SSH_CONNECTION_LOST':
        return EXIT.unreachable;
      case 'LOCK_HELD':
      case 'AUDIT_UNWRITABLE':
      case 'AUDIT_TAMPERED':
      case 'BUSY':
      case 'STORE_ERROR':
      case 'KUBE_FORBIDDEN':
      case 'KUBE_UNAUTHORIZED':
      case 'KUBE_UNREACHABLE':
      case 'KUBE_ERROR':
        return EXIT.failed;
      default:
        return EXIT.usage;
    }
  }

  /** One-line rendering with the hint, for terminals and Slack. */
  describe(): string {
    return this.hint ? `${this.message}\n  hint: ${this.hint}` : this.message;
  }
}

export class UsageError extends NodediagError {
  constructor(message: string, hint?: string) {
    super('USAGE', message, hint);
  }
}

export class ConfigError extends NodediagError {
  constructor(message: string, hint?: string) {
    super('CONFIG_INVALID', message, hint);
  }
}

export class InventoryError extends NodediagError {
  constructor(message: string, hint?: string) {
    super('INVENTORY_INVALID', message, hint);
  }
}

export class CatalogError extends NodediagError {
  constructor(message: string) {
    super('CATALOG_INVALID', message);
  }
}

export class InvalidNodeNameError extends NodediagError {
  constructor(shown: string, why: string) {
    super(
      'NODE_NAME_INVALID',
      `"${shown}" is not a valid node name: ${why}`,
      'node names are RFC 1123 names: lowercase letters, digits, "-" and ".", at most 253 characters',
    );
  }
}

export class UnknownNodeError extends NodediagError {
  constructor(
    readonly node: string,
    readonly suggestions: string[],
  ) {
    super(
      'NODE_UNKNOWN',
      `node "${node}" is not in the inventory` +
        (suggestions.length ? ` (did you mean ${suggestions.map((s) => `"${s}"`).join(', ')}?)` : ''),
      'add it to the inventory file, or set defaults.knownHostsPath so nodes found in Kubernetes can be reached',
    );
  }
}

export class KeyFileError extends NodediagError {
  constructor(path: string, why: string) {
    super('KEY_FILE_UNREADABLE', `cannot read SSH private key ${path}: ${why}`, 'check privateKeyPath in the inventory');
  }
}

export class HostKeyUnknownError extends NodediagError {
  constructor(node: string, presented: string) {
    super(
      'HOST_KEY_UNKNOWN',
      `refused ${node}: its host key ${presented} is not pinned`,
      'pin it with hostKey (the SHA256 fingerprint `ssh-keygen -lf` prints) or knownHostsPath in the inventory, after checking it out of band',
    );
  }
}

export class HostKeyMismatchError extends NodediagError {
  constructor(node: string, presented: string, expected: string[]) {
    super(
      'HOST_KEY_MISMATCH',
      `POSSIBLE ATTACK: ${node} presented host key ${presented}, which does not match the pinned ${expected.join(' or ')}; connection refused`,
      'if the node was legitimately reinstalled, verify its new key out of band and update the inventory',
    );
  }
}

/** The machine reached over SSH is not the Kubernetes Node of that name (its machine-id differs from what kubelet reports). */
export class HostIdentityMismatchError extends NodediagError {
  constructor(node: string, detail: string) {
    super(
      'HOST_IDENTITY_MISMATCH',
      `REFUSED: the machine reached as ${node} is not the Kubernetes Node ${node} (${detail}); nothing was run`,
      'the inventory points this name at another machine (a reused address, a swapped entry): fix the host in the inventory before fixing anything',
    );
  }
}

export class SshAuthError extends NodediagError {
  constructor(node: string, user: string) {
    super(
      'SSH_AUTH_FAILED',
      `SSH authentication as "${user}" on ${node} was refused`,
      "check the node's authorized_keys for the bot's public key and the inventory's user",
    );
  }
}

export class SshUnreachableError extends NodediagError {
  constructor(node: string, address: string, why: string, code: ErrorCode = 'SSH_UNREACHABLE') {
    super(code, `cannot reach ${node} at ${address}: ${why}`);
  }
}

export class KubeAccessError extends NodediagError {
  constructor(code: 'KUBE_FORBIDDEN' | 'KUBE_UNAUTHORIZED' | 'KUBE_UNREACHABLE' | 'KUBE_ERROR', message: string, hint?: string) {
    super(code, message, hint);
  }
}

export class LockHeldError extends NodediagError {
  constructor(
    node: string,
    /** Who holds it, as they said when they took it. */
    readonly holder: string,
    since: string,
  ) {
    super('LOCK_HELD', `a fix is already running on ${node} (held by ${holder} since ${since})`, 'wait for it to finish; one fix per node at a time');
  }
}

export class AuditError extends NodediagError {
  constructor(code: 'AUDIT_UNWRITABLE' | 'AUDIT_TAMPERED', message: string, hint?: string) {
    super(code, message, hint);
  }
}

/** Renders any thrown value as a safe one-line message (no stack, no secrets). */
export function errorMessage(err: unknown): string {
  if (err instanceof NodediagError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
