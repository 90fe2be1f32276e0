/**
 * Parser for `xfs_quota -x -c 'report -p -b [-N] [-n]'`, written against xfsprogs'
 * quota/report.c. A row is the identifier, then per reported kind (blocks only, with `-b`)
 * `used soft hard warns grace`:
 *
 *   Project quota on /var/nfs (/dev/sdb1)
 *                                  Blocks
 *   Project ID       Used       Soft       Hard    Warn/Grace
 *   ---------- --------------------------------------------------
 *   #0                  0          0          0     00 [--------]
 *   #1001          123456          0    1048576     00 [--------]
 *   alice            2048          0    1048576     00 [--none--]
 *
 * The four header lines appear once per filesystem without `-N`. The identifier is `#<id>` with
 * `-n`, or a name from /etc/projid (`#<id>` when the ID has none). Block counts are in 1 KiB
 * units (report.c prints basic blocks shifted right by one). The grace column is `[--------]`,
 * `[--none--]` (over the hard limit), `[7 days]` or `[hh:mm:ss]`, so it may contain a space.
 */
import { QuotaReportError } from '../../errors.js';

export interface XfsReportRow {
  readonly usedBytes: number;
  readonly softLimitBytes: number;
  /** 0 means no limit. */
  readonly hardLimitBytes: number;
}

/** Numeric keys are IDs (`#1001`); string keys are names as xfs_quota printed them. */
export type XfsReportKey = number | string;

const HEADER_TITLE = /^(?:User|Group|Project) quota on .*$/;
const HEADER_KINDS = /^\s+(?:Blocks|Inodes|Realtime Blocks)(?:\s+(?:Blocks|Inodes|Realtime Blocks))*\s*$/;
const HEADER_COLUMNS = /^(?:User|Group|Project) ID\s+Used\s+Soft\s+Hard\s+Warn\/\s*Grace/;
const HEADER_RULE = /^-{10} -+(?: -+)*\s*$/;
// The identifier is matched lazily so the first `used soft hard warns grace` group after it is the
// block group; names may contain spaces, which the anchored tail then sorts out.
const ROW =
  /^(\S(?:.*?\S)?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\[[^\]]*\]|\d+:\d{2}:\d{2})((?:\s+\d+\s+\d+\s+\d+\s+\d+\s+(?:\[[^\]]*\]|\d+:\d{2}:\d{2}))*)\s*$/;
const NUMERIC_ID = /^#(\d+)$/;

/** Rows of a project report in bytes, keyed by ID or name. Throws {@link QuotaReportError} on lines it does not know. */
export function parseXfsProjectReport(text: string): Map<XfsReportKey, XfsReportRow> {
  return new XfsReportParser().parse(text);
}

type ParsedRow = readonly [XfsReportKey, XfsReportRow];

/**
 * Parses report after report, handing back the row objects of the previous report for lines
 * that are the same, byte for byte. A report has a line per user and is read every resync; most
 * lines do not change between two, and parsing each again (a regex match, seven substrings and a
 * row object per line) was most of what a steady resync of ten thousand users left to collect.
 */
export class XfsReportParser {
  /** The previous report's rows by line; only that report's, so it never grows past one report. */
  private rowsByLine = new Map<string, ParsedRow>();

  parse(text: string): Map<XfsReportKey, XfsReportRow> {
    const previous = this.rowsByLine;
    const current = new Map<string, ParsedRow>();
    const rows = new Map<XfsReportKey, XfsReportRow>();
    const lines = text.split(/\r?\n/);
    lines.forEach((line, index) => {
      const parsed = previous.get(line) ?? parseLine(line, index);
      if (parsed === undefined) return;
      current.set(line, parsed);
      rows.set(parsed[0], parsed[1]);
    });
    this.rowsByLine = current;
    return rows;
  }
}

/** A row's key and figures; undefined for blank and header lines. */
function parseLine(line: string, index: number): ParsedRow | undefined {
  if (line.trim() === '') return undefined;
  if (HEADER_TITLE.test(line) || HEADER_KINDS.test(line) || HEADER_COLUMNS.test(line)) return undefined;
  if (HEADER_RULE.test(line)) return undefined;
  const match = ROW.exec(line);
  if (!match) throw new QuotaReportError(index + 1, line, 'not a header or a report row');
  const [, identifier = '', used = '', soft = '', hard = ''] = match;
  const numeric = NUMERIC_ID.exec(identifier);
  const key: XfsReportKey = numeric ? Number(numeric[1]) : identifier;
  if (typeof key === 'number' && !Number.isSafeInteger(key)) {
    throw new QuotaReportError(index + 1, line, 'project ID out of range');
  }
  return [
    key,
    {
      usedBytes: kibToBytes(used, index, line),
      softLimitBytes: kibToBytes(soft, index, line),
      hardLimitBytes: kibToBytes(hard, index, line),
    },
  ];
}

/** The largest KiB count whose byte count is still a safe integer. */
const MAX_SAFE_KIB = Math.floor(Number.MAX_SAFE_INTEGER / 1024);

function kibToBytes(kib: string, index: number, line: string): number {
  // Plain numbers, not BigInt: a report has three per user, every resync. `kib` is all digits
  // (the row pattern says so), so Number() is exact up to MAX_SAFE_KIB.
  const value = Number(kib);
  if (value > MAX_SAFE_KIB) {
    // Rounding would report a limit or usage that is not the one on disk.
    throw new QuotaReportError(index + 1, line, `${kib} KiB does not fit a safe integer of bytes`);
  }
  return value * 1024;
}
