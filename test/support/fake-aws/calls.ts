/** Every API call the fake server answered, for assertions and benches. */

export interface CallRecord {
  service: string;
  action: string;
  accountId: string;
  region: string;
  /** HTTP status sent. */
  status: number;
  /** The AWS error code sent, if any. */
  errorCode?: string | undefined;
  at: number;
}

export interface CallFilter {
  service?: string;
  action?: string;
  accountId?: string;
  region?: string;
  /** true: only calls answered with an error; false: only successes. */
  failed?: boolean;
  errorCode?: string;
}

/** Bounded log: keeps counts forever, but only the last `maxRecords` records (default 200,000). */
export class CallLog {
  readonly records: CallRecord[] = [];
  private total = 0;
  private readonly maxRecords: number;
  constructor(maxRecords = 200_000) {
    this.maxRecords = maxRecords;
  }

  record(r: CallRecord): void {
    this.total += 1;
    this.records.push(r);
    if (this.records.length > this.maxRecords) this.records.splice(0, this.records.length - this.maxRecords);
  }

  /** How many recorded calls match the filter (all fields optional). */
  count(filter: CallFilter = {}): number {
    let n = 0;
    for (const r of this.records) if (matches(r, filter)) n += 1;
    return n;
  }

  /** Counts per "service:action" key for the matching calls. */
  byAction(filter: CallFilter = {}): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.records) {
      if (!matches(r, filter)) continue;
      const k = `${r.service}:${r.action}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  get totalCalls(): number {
    return this.total;
  }

  clear(): void {
    this.records.length = 0;
    this.total = 0;
  }
}

function matches(r: CallRecord, f: CallFilter): boolean {
  if (f.service !== undefined && r.service !== f.service) return false;
  if (f.action !== undefined && r.action !== f.action) return false;
  if (f.accountId !== undefined && r.accountId !== f.accountId) return false;
  if (f.region !== undefined && r.region !== f.region) return false;
  if (f.errorCode !== undefined && r.errorCode !== f.errorCode) return false;
  if (f.failed === true && r.errorCode === undefined) return false;
  if (f.failed === false && r.errorCode !== undefined) return false;
  return true;
}
