/** Grouped bar charts as plain SVG strings (no dependencies): one panel per metric, each with its own scale. */
export interface Panel {
  title: string;
  unit: string;
  /** Group label → value per series (NaN or missing: drawn as "n/a"). */
  groups: { label: string; values: Record<string, number> }[];
}

/** A panel with a single group of bars. */
export function singleGroupPanel(title: string, unit: string, label: string, values: Record<string, number>): Panel {
  return { title, unit, groups: [{ label, values }] };
}

const COLORS: Record<string, string> = {
  herald: '#2563eb',
  'raw-ws': '#16a34a',
  'raw-ws-acks': '#65a30d',
  'socket.io': '#dc2626',
};
const FALLBACK = ['#7c3aed', '#ea580c', '#0891b2'];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function short(n: number): string {
  if (n >= 10_000) return `${(n / 1000).toFixed(0)}k`;
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`;
  if (n >= 10) return n.toFixed(0);
  return n.toFixed(n >= 1 ? 1 : 2);
}

export function barChart(title: string, subtitle: string, series: string[], panels: Panel[]): string {
  const panelWidth = 300;
  const panelHeight = 260;
  const top = 70;
  const width = Math.max(1, panels.length) * panelWidth + 20;
  const height = top + panelHeight + 60;
  const color = (s: string, i: number) => COLORS[s] ?? FALLBACK[i % FALLBACK.length]!;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="38" fill="#555">${escape(subtitle)}</text>`,
  ];
  series.forEach((s, i) => {
    const x = 10 + i * 110;
    parts.push(
      `<rect x="${x}" y="48" width="10" height="10" fill="${color(s, i)}"/>`,
      `<text x="${x + 14}" y="57">${escape(s)}</text>`,
    );
  });
  panels.forEach((panel, p) => {
    const x0 = 10 + p * panelWidth + 40;
    const plotWidth = panelWidth - 60;
    const plotTop = top + 24;
    const plotHeight = panelHeight - 60;
    const max = Math.max(
      1e-9,
      ...panel.groups.flatMap((g) => Object.values(g.values).filter((v) => Number.isFinite(v))),
    );
    parts.push(
      `<text x="${x0}" y="${top + 12}" font-weight="bold">${escape(panel.title)} (${escape(panel.unit)})</text>`,
    );
    parts.push(
      `<line x1="${x0}" y1="${plotTop + plotHeight}" x2="${x0 + plotWidth}" y2="${plotTop + plotHeight}" stroke="#999"/>`,
    );
    const groupWidth = plotWidth / Math.max(1, panel.groups.length);
    const barWidth = Math.max(4, (groupWidth - 10) / Math.max(1, series.length));
    panel.groups.forEach((group, g) => {
      const gx = x0 + g * groupWidth + 5;
      series.forEach((s, i) => {
        const value = group.values[s];
        const bx = gx + i * barWidth;
        if (value === undefined || !Number.isFinite(value)) {
          parts.push(
            `<text x="${bx + barWidth / 2}" y="${plotTop + plotHeight - 4}" text-anchor="middle" fill="#999" font-size="8">n/a</text>`,
          );
          return;
        }
        const h = (value / max) * plotHeight;
        parts.push(
          `<rect x="${bx.toFixed(1)}" y="${(plotTop + plotHeight - h).toFixed(1)}" width="${(barWidth - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${color(s, i)}"><title>${escape(`${s} ${group.label}: ${value}`)}</title></rect>`,
          `<text x="${(bx + barWidth / 2).toFixed(1)}" y="${(plotTop + plotHeight - h - 3).toFixed(1)}" text-anchor="middle" font-size="8">${short(value)}</text>`,
        );
      });
      parts.push(
        `<text x="${(gx + (barWidth * series.length) / 2).toFixed(1)}" y="${plotTop + plotHeight + 14}" text-anchor="middle">${escape(group.label)}</text>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
