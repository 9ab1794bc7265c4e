import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type TopicId, topicDeclarations, topicName } from '@sluice/contracts';
import type { Admin } from '@sluice/kafka';

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux clock ticks of 10 ms). */
export async function cpuMs(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: fields are counted after its closing parenthesis.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Resident memory of a process now, in MB. */
export async function rssMb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(text)?.[1] ?? Number.NaN) / 1024;
}

export interface TopicUsage {
  topic: TopicId;
  records: number;
  bytes: number;
}

/** Records written so far (end offsets: take the difference of two readings) and bytes on the broker's disk (log segments) of every Sluice topic. */
export async function topicUsage(admin: Admin, prefix: string, dataDirs: string[]): Promise<TopicUsage[]> {
  const ids = Object.keys(topicDeclarations) as TopicId[];
  const usage: TopicUsage[] = [];
  for (const id of ids) {
    const name = topicName(id, prefix);
    let records = 0;
    try {
      for (const range of await admin.topicOffsets([name])) records += Number(range.end);
    } catch {
      continue; // a topic this deployment does not create
    }
    let bytes = 0;
    for (const dir of dataDirs) {
      for (const entry of await readdir(dir).catch(() => [] as string[])) {
        if (!entry.startsWith(`${name}-`) || !/-\d+$/.test(entry)) continue;
        for (const file of await readdir(join(dir, entry))) {
          if (file.endsWith('.log')) bytes += (await stat(join(dir, entry, file))).size;
        }
      }
    }
    usage.push({ topic: id, records, bytes });
  }
  return usage;
}
