// The tab's icon: the worst state of the page, in its colour and its shape
// (the title says it in words), so a glance at the tab bar tells. Drawn from
// the state tokens in states.css, as an SVG data: URL.

const SIZE = 32;
// Each state's shape, in the "on" colour over a disc of the fill colour.
const GLYPHS = {
  up: (on) => `<path d="M9 16.5l4.5 4.5L23 11.5" fill="none" stroke="${on}" stroke-width="4" stroke-linecap="round" stroke-linejoin="round"/>`,
  degraded: (on) => `<path d="M16 7.5l9 15.5H7z" fill="${on}"/>`,
  down: (on) => `<path d="M10.5 10.5l11 11M21.5 10.5l-11 11" stroke="${on}" stroke-width="4" stroke-linecap="round"/>`,
  unknown: (on) => `<path d="M12 12.5a4 4 0 1 1 5.6 3.7c-1 .5-1.6 1.2-1.6 2.4v.6" fill="none" stroke="${on}" stroke-width="3.2" stroke-linecap="round"/><circle cx="16" cy="23.4" r="2" fill="${on}"/>`,
};

let drawn = "";

function token(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Show `state` (up, degraded, down or unknown) in the tab's icon. */
export function showWorst(state) {
  const status = GLYPHS[state] ? state : "unknown";
  const fill = token("--" + status) || "#6b7280";
  const on = token("--on-" + status) || "#ffffff";
  const key = status + fill + on;
  if (key === drawn) return;
  drawn = key;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${SIZE} ${SIZE}">` +
    `<circle cx="16" cy="16" r="15" fill="${fill}"/>${GLYPHS[status](on)}</svg>`;
  const link = document.getElementById("favicon");
  link.href = "data:image/svg+xml," + encodeURIComponent(svg);
  link.setAttribute("data-status", status);
}
