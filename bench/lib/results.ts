/** Result files: bench/results/<name>.json (full run) or <name>.smoke.json (smoke run). */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import prettier from 'prettier';
import { REPO_ROOT } from './context.js';

export const RESULTS_DIR = path.join(REPO_ROOT, 'bench/results');

export function resultPath(name: string, smoke: boolean): string {
  return path.join(RESULTS_DIR, `${name}${smoke ? '.smoke' : ''}.json`);
}

/** Written through prettier so `npm run lint` (prettier --check .) accepts the files. */
export async function writeFormatted(file: string, text: string): Promise<void> {
  const options = (await prettier.resolveConfig(file)) ?? {};
  const formatted = await prettier.format(text, { ...options, filepath: file });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, formatted);
}

export async function writeResult(name: string, smoke: boolean, data: unknown): Promise<string> {
  const file = resultPath(name, smoke);
  await writeFormatted(file, JSON.stringify(data, null, 2));
  return file;
}

export async function readResult<T>(name: string, smoke: boolean): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(resultPath(name, smoke), 'utf8')) as T;
  } catch {
    return undefined;
  }
}
