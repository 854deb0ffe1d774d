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

/** The opening of a chart: the svg element, white background, title, subtitle and a legend of `series`. */
function header(
  title: string,
  subtitle: string,
  width: number,
  height: number,
  series: string[],
  color: (s: string, i: number) => string,
): string[] {
  const parts = [
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
  return parts;
}

export function barChart(title: string, subtitle: string, series: string[], panels: Panel[]): string {
  const panelWidth = 300;
  const panelHeight = 260;
  const top = 70;
  const width = Math.max(1, panels.length) * panelWidth + 20;
  const height = top + panelHeight + 60;
  const color = (s: string, i: number) => COLORS[s] ?? FALLBACK[i % FALLBACK.length]!;
  const parts = header(title, subtitle, width, height, series, color);
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

/** A panel of lines: one per series, y against x (the same x step for every point). */
export interface LinePanel {
  title: string;
  xUnit: string;
  yUnit: string;
  /** Series name → y values at x = 0, step, 2·step … */
  series: Record<string, number[]>;
  step: number;
}

/** Line charts side by side, one panel each, each with its own scales. */
export function lineChart(title: string, subtitle: string, panels: LinePanel[]): string {
  const panelWidth = 420;
  const plotHeight = 220;
  const top = 70;
  const width = Math.max(1, panels.length) * panelWidth + 20;
  const height = top + plotHeight + 90;
  const names = [...new Set(panels.flatMap((p) => Object.keys(p.series)))];
  const color = (s: string) => COLORS[s] ?? FALLBACK[names.indexOf(s) % FALLBACK.length]!;
  const parts = header(title, subtitle, width, height, names, color);
  panels.forEach((panel, p) => {
    const x0 = 10 + p * panelWidth + 50;
    const plotWidth = panelWidth - 80;
    const plotTop = top + 24;
    const xMax = Math.max(1e-9, ...Object.values(panel.series).map((ys) => (ys.length - 1) * panel.step));
    const yMax = Math.max(1e-9, ...Object.values(panel.series).flat());
    const px = (x: number) => x0 + (x / xMax) * plotWidth;
    const py = (y: number) => plotTop + plotHeight - (y / yMax) * plotHeight;
    parts.push(
      `<text x="${x0}" y="${top + 12}" font-weight="bold">${escape(panel.title)}</text>`,
      `<line x1="${x0}" y1="${plotTop + plotHeight}" x2="${x0 + plotWidth}" y2="${plotTop + plotHeight}" stroke="#999"/>`,
      `<line x1="${x0}" y1="${plotTop}" x2="${x0}" y2="${plotTop + plotHeight}" stroke="#999"/>`,
      `<text x="${x0 - 4}" y="${plotTop + 4}" text-anchor="end">${short(yMax)}</text>`,
      `<text x="${x0 - 4}" y="${plotTop + plotHeight}" text-anchor="end">0</text>`,
      `<text x="${x0 + plotWidth}" y="${plotTop + plotHeight + 14}" text-anchor="end">${short(xMax)} ${escape(panel.xUnit)}</text>`,
      `<text x="${x0}" y="${plotTop + plotHeight + 14}" text-anchor="middle">0</text>`,
      `<text x="${x0}" y="${plotTop - 6}" fill="#555">${escape(panel.yUnit)}</text>`,
    );
    for (const [name, ys] of Object.entries(panel.series)) {
      const points = ys.map((y, i) => `${px(i * panel.step).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      parts.push(
        `<polyline fill="none" stroke="${color(name)}" stroke-width="2" points="${points}"><title>${escape(name)}</title></polyline>`,
      );
    }
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
