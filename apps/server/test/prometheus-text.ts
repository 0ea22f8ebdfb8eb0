/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: every line is a
 * comment (`# TYPE name kind`, `# HELP name text`) or a sample `name{labels} value`; a family's
 * samples follow its TYPE line and stay together.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf|-Inf|NaN))$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/;

export function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  let family = "";
  const seenFamilies = new Set<string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const parts = line.split(" ");
      const name = parts[2];
      const kind = parts[3];
      if (parts.length !== 4 || !name || !kind || !["counter", "gauge", "histogram", "summary", "untyped"].includes(kind)) throw new Error(`bad TYPE line: ${line}`);
      if (seenFamilies.has(name)) throw new Error(`family ${name} declared twice`);
      seenFamilies.add(name);
      types.set(name, kind);
      family = name;
      continue;
    }
    if (line.startsWith("# HELP ") || line === "") continue;
    if (line.startsWith("#")) throw new Error(`bad comment: ${line}`);
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`bad sample line: ${line}`);
    const name = m[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    if (name !== family && base !== family) throw new Error(`sample ${name} outside its family (current: ${family})`);
    const labels: Record<string, string> = {};
    let rest = m[3] ?? "";
    while (rest.length > 0) {
      const l = LABEL.exec(rest);
      if (l === null) throw new Error(`bad labels in: ${line}`);
      labels[l[1]!] = l[2]!;
      rest = rest.slice(l[0].length);
    }
    samples.push({ name, labels, value: Number(m[4]!.replace("+Inf", "Infinity")) });
  }
  return { types, samples };
}

/** The value of the one sample with this name and these labels (undefined if none). */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
