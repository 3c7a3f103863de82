/**
 * The local model picker: the registry as `goldiff.models` returns it (name, kind, base,
 * lineage with its data and loss, date), the current choice marked, plus "Download…"
 * (a GGUF from the hub or a URL, registered) and "Add GGUF File…". The choice goes into `goldiff.local.model`, which wins over the registry's
 * default (`goldiff models use`); clearing it hands the choice back to the registry.
 */

export interface RegistryEntry {
  name: string;
  path: string;
  kind?: string;
  base?: string | null;
  lineage?: Record<string, unknown>;
  registered_at?: number;
  builtin?: boolean;
  exists?: boolean;
}

export interface ModelsAnswer {
  default?: string | null;
  models?: RegistryEntry[];
}

export interface ModelPickItem {
  label: string;
  description?: string;
  detail?: string;
  /** The value for goldiff.local.model; '' hands the choice to the registry's default. */
  value?: string;
  addFile?: boolean;
  /** "Download…": fetch a GGUF into the registry (goldiff.pullModel). */
  download?: boolean;
}

function day(epochSeconds: number | undefined): string {
  return epochSeconds ? new Date(epochSeconds * 1000).toISOString().slice(0, 10) : '';
}

export function modelPickItems(answer: unknown, setting: string): ModelPickItem[] {
  const a = (answer !== null && typeof answer === 'object' ? answer : {}) as ModelsAnswer;
  const models = Array.isArray(a.models) ? a.models.filter((m) => typeof m?.name === 'string') : [];
  const items: ModelPickItem[] = [
    {
      label: 'Registry default',
      description: `${a.default ?? 'none'}${setting === '' ? ' · current' : ''}`,
      detail: 'Whatever `goldiff models use NAME` chose (the shipped model until then).',
      value: '',
    },
  ];
  for (const m of models) {
    const lineage = m.lineage ?? {};
    const bits = [
      m.kind === 'adapter' ? `adapter on ${m.base ?? '?'}` : m.base ? `on ${m.base}` : '',
      typeof lineage.base === 'string' ? `base ${lineage.base.split(/[\\/]/).pop()}` : '',
      typeof lineage.train_rows === 'number' ? `${lineage.train_rows} rows` : '',
      typeof lineage.train_loss === 'number' ? `loss ${lineage.train_loss.toFixed(3)}` : '',
      typeof lineage.last_eval === 'string' ? `last eval ${lineage.last_eval}` : '',
      day(m.registered_at),
      m.exists === false ? 'file missing' : '',
    ].filter((b) => b !== '');
    items.push({
      label: m.name,
      description: [m.name === setting ? 'current' : '', m.builtin === true ? 'shipped' : ''].filter((d) => d !== '').join(' · '),
      detail: bits.join(' · ') || m.path,
      value: m.name,
    });
  }
  items.push(
    { label: '$(cloud-download) Download…', detail: 'A GGUF from the Hugging Face hub (hf://OWNER/REPO/FILE.gguf) or a URL, checked and registered.', download: true },
    { label: '$(file-add) Add GGUF File…', detail: 'A model file on this machine, used where it is.', addFile: true },
  );
  return items;
}
