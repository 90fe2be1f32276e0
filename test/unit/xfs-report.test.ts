/**
 * parseXfsProjectReport on output laid out exactly as xfsprogs' quota/report.c prints it:
 * `#%-10u` IDs with -n, `%-10s` names (or `#%-9u`) without, then ` %10llu %10llu %10llu     %02d %9s`
 * per block group, values in KiB.
 */
import { describe, expect, it } from 'vitest';
import { QuotaReportError } from '../../src/errors.js';
import { XfsReportParser, parseXfsProjectReport } from '../../src/homes/quota/xfs-report.js';

const KiB = 1024;

/** `report -p -b -N -n`: numeric IDs, no header, the blank line report.c ends with. */
const NUMERIC_NO_HEADER = [
  '#0                   0          0          0     00 [--------]',
  '#1000           123456          0    1048576     00 [--------]',
  '#1001          1048580          0    1048576     00 [--none--]',
  '#4294967294          0          0          0     00 [--------]',
  '',
  '',
].join('\n');

/** `report -p -b` without -N or -n: the four header lines, names from /etc/projid, `#%-9u` for the rest. */
const NAMED_WITH_HEADER = [
  'Project quota on /var/nfs (/dev/sdb1)',
  '                               Blocks                     ',
  'Project ID       Used       Soft       Hard    Warn/Grace     ',
  '---------- -------------------------------------------------- ',
  '#0                  0          0          0     00 [--------]',
  'alice            2048          0    1048576     00 [--------]',
  'a.very.long.project.name       10          5         20     01  [7 days]',
  '#1002               0          0          0     00 [--------]',
  '',
].join('\n');

describe('parseXfsProjectReport', () => {
  it('reads -N -n output: IDs as numbers, KiB as bytes, 0 as no limit', () => {
    const rows = parseXfsProjectReport(NUMERIC_NO_HEADER);
    expect([...rows.keys()]).toEqual([0, 1000, 1001, 4294967294]);
    expect(rows.get(0)).toEqual({ usedBytes: 0, softLimitBytes: 0, hardLimitBytes: 0 });
    expect(rows.get(1000)).toEqual({ usedBytes: 123456 * KiB, softLimitBytes: 0, hardLimitBytes: 1024 ** 3 });
    // Over the hard limit: the grace column reads [--none--].
    expect(rows.get(1001)).toEqual({
      usedBytes: 1048580 * KiB,
      softLimitBytes: 0,
      hardLimitBytes: 1024 ** 3,
    });
    expect(rows.get(4294967294)?.hardLimitBytes).toBe(0);
  });

  it('skips the header and reads names, #IDs without names and day/time grace columns', () => {
    const rows = parseXfsProjectReport(NAMED_WITH_HEADER);
    expect([...rows.keys()]).toEqual([0, 'alice', 'a.very.long.project.name', 1002]);
    expect(rows.get('alice')).toEqual({
      usedBytes: 2 * 1024 * KiB,
      softLimitBytes: 0,
      hardLimitBytes: 1024 ** 3,
    });
    expect(rows.get('a.very.long.project.name')).toEqual({
      usedBytes: 10 * KiB,
      softLimitBytes: 5 * KiB,
      hardLimitBytes: 20 * KiB,
    });
    expect(rows.get(1002)).toEqual({ usedBytes: 0, softLimitBytes: 0, hardLimitBytes: 0 });
  });

  it('is the same with and without the header', () => {
    const body = NAMED_WITH_HEADER.split('\n').slice(4).join('\n');
    expect(parseXfsProjectReport(body)).toEqual(parseXfsProjectReport(NAMED_WITH_HEADER));
  });

  it('reads one header block per filesystem (report -a)', () => {
    const twoMounts = [
      'Project quota on /var/nfs (/dev/sdb1)',
      '                               Blocks                     ',
      'Project ID       Used       Soft       Hard    Warn/Grace     ',
      '---------- -------------------------------------------------- ',
      '#1000              4          0          8     00 [--------]',
      '',
      'Project quota on /srv/other (/dev/sdc1)',
      '                               Blocks                     ',
      'Project ID       Used       Soft       Hard    Warn/Grace     ',
      '---------- -------------------------------------------------- ',
      '#2000             16          0         32     00 [--------]',
      '',
    ].join('\n');
    const rows = parseXfsProjectReport(twoMounts);
    expect(rows.get(1000)?.hardLimitBytes).toBe(8 * KiB);
    expect(rows.get(2000)?.usedBytes).toBe(16 * KiB);
  });

  it('reads large numbers exactly', () => {
    // 100 TiB used of a 1 PiB limit, and an 8 PiB - 1 KiB limit: all exact in a double.
    const text = [
      '#1000       107374182400          0 1099511627776     00 [--------]',
      '#1001                0          0 8796093022207     00 [--------]',
    ].join('\n');
    const rows = parseXfsProjectReport(text);
    expect(rows.get(1000)).toEqual({
      usedBytes: 100 * 1024 ** 4,
      softLimitBytes: 0,
      hardLimitBytes: 1024 ** 5,
    });
    expect(rows.get(1001)?.hardLimitBytes).toBe(8796093022207 * KiB);
    expect(Number.isSafeInteger(rows.get(1001)?.hardLimitBytes)).toBe(true);
  });

  it('refuses a value that would not be exact in bytes rather than round it', () => {
    // 2^63 - 1 basic blocks shifted to KiB, as an unlimited-looking corrupt dquot could show.
    const text = '#1000                0          0 4611686018427387903     00 [--------]';
    expect(() => parseXfsProjectReport(text)).toThrow(QuotaReportError);
    // One KiB past the largest exact figure (8796093022207 KiB, read above).
    expect(() =>
      parseXfsProjectReport('#1001                0          0 8796093022208     00 [--------]'),
    ).toThrow(QuotaReportError);
  });

  it('takes the block group when inode columns follow (report -p -bi)', () => {
    const text =
      '#1000            100          0        200     00 [--------]          3          0          0     00 [--------]';
    expect(parseXfsProjectReport(text).get(1000)).toEqual({
      usedBytes: 100 * KiB,
      softLimitBytes: 0,
      hardLimitBytes: 200 * KiB,
    });
  });

  it('accepts CRLF line ends and an empty report', () => {
    expect(parseXfsProjectReport(NUMERIC_NO_HEADER.replaceAll('\n', '\r\n')).size).toBe(4);
    expect(parseXfsProjectReport('').size).toBe(0);
    expect(parseXfsProjectReport('\n').size).toBe(0);
  });

  it('refuses a line it does not know, naming the line', () => {
    const text = `${NUMERIC_NO_HEADER.trimEnd()}\nXFS_GETQUOTA: Operation not permitted\n`;
    const error = (() => {
      try {
        parseXfsProjectReport(text);
      } catch (caught: unknown) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(QuotaReportError);
    expect(error).toMatchObject({ code: 'SK_QUOTA_REPORT', lineNumber: 5 });
  });

  it('refuses human-readable (-h) output instead of misreading 1.5G as a number', () => {
    expect(() => parseXfsProjectReport('#1000        1.5G      0     2G  00 [------]')).toThrow(
      QuotaReportError,
    );
  });
});

describe('XfsReportParser', () => {
  const FIRST = [
    '#1000            100          0       2048     00 [--------]',
    '#1001            200          0       2048     00 [--------]',
    '#1002            300          0       2048     00 [--------]',
  ];

  it('hands back the previous row object for an unchanged line, and parses changed ones afresh', () => {
    const parser = new XfsReportParser();
    const first = parser.parse(FIRST.join('\n'));
    const changed = '#1001            201          0       2048     00 [--------]';
    const second = parser.parse(
      [FIRST[0], changed, '#1003              0          0       4096     00 [--------]'].join('\n'),
    );
    expect(second.get(1000)).toBe(first.get(1000));
    expect(second.get(1001)).not.toBe(first.get(1001));
    expect(second.get(1001)).toEqual({ usedBytes: 201 * KiB, softLimitBytes: 0, hardLimitBytes: 2048 * KiB });
    expect(second.get(1003)).toEqual({ usedBytes: 0, softLimitBytes: 0, hardLimitBytes: 4096 * KiB });
    expect(second.has(1002)).toBe(false);
    // The same figures as a parser with no past.
    expect(second).toEqual(
      parseXfsProjectReport(
        [FIRST[0], changed, '#1003              0          0       4096     00 [--------]'].join('\n'),
      ),
    );
  });

  it('remembers only the last report: a line gone for one report is parsed again when it returns', () => {
    const parser = new XfsReportParser();
    const first = parser.parse(FIRST.join('\n'));
    parser.parse(FIRST[0] ?? '');
    const third = parser.parse(FIRST.join('\n'));
    expect(third.get(1000)).toBe(first.get(1000));
    expect(third.get(1002)).not.toBe(first.get(1002));
    expect(third.get(1002)).toEqual(first.get(1002));
  });

  it('still refuses an unknown line after a good report, naming its line number', () => {
    const parser = new XfsReportParser();
    parser.parse(FIRST.join('\n'));
    expect(() => parser.parse(`${FIRST.join('\n')}\nXFS_GETQUOTA: Operation not permitted`)).toThrow(
      expect.objectContaining({ code: 'SK_QUOTA_REPORT', lineNumber: 4 }),
    );
  });
});
