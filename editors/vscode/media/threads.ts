/**
 * The Threads view's webview: draws the tree's DOT with Graphviz (viz.js, WebAssembly),
 * fits it to the view's width (zoom buttons, Ctrl+wheel), scrolls to the likeliest beam
 * (its end at the right edge, its branch to the left) when it is still wider, and turns clicks on its nodes into messages for the extension.
 * Bundled by esbuild to dist/threads.js; the message shapes live in src/core/threads.ts.
 */
import { instance } from '@viz-js/viz';

import { fitScale } from '../src/core/threadGraph';
import type { FromWebview, NodeView, ToWebview } from '../src/core/threads';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const graph = document.getElementById('graph')!;
const caption = document.getElementById('caption')!;
const notice = document.getElementById('notice')!;
const vizReady = instance();

/** Graphviz's size of the tree on show, in CSS pixels, and the zoom: `fit` follows the view's width. */
let natural: { width: number; height: number } | undefined;
let zoom: number | 'fit' = 'fit';
let focusId: string | undefined;

/** Size the SVG for the zoom; the viewBox scales it, text and all. */
function applyZoom(scrollToFocus: boolean): void {
  const svg = graph.querySelector('svg');
  if (!svg || !natural) return;
  // The view's width less the body's padding; never below the narrowest readable scale.
  const scale = zoom === 'fit' ? fitScale(natural.width, graph.clientWidth - 4) : zoom;
  svg.setAttribute('width', `${Math.round(natural.width * scale)}`);
  svg.setAttribute('height', `${Math.round(natural.height * scale)}`);
  document.body.dataset.scale = scale.toFixed(2);
  if (!scrollToFocus) return;
  const focus = focusId ? svg.querySelector<SVGGElement>(`g.node[id="${CSS.escape(focusId)}"]`) : null;
  // At the right edge, the beam's end shows with as much of its branch as fits to its left.
  if (focus && (graph.scrollWidth > graph.clientWidth + 1 || graph.scrollHeight > graph.clientHeight + 1)) {
    focus.scrollIntoView({ block: 'center', inline: 'end' });
  }
}

function setZoom(next: number | 'fit'): void {
  const current = Number(document.body.dataset.scale ?? '1');
  zoom = next === 'fit' ? 'fit' : Math.max(0.25, Math.min(3, next));
  if (zoom !== 'fit' && Math.abs(zoom - current) < 0.001) return;
  applyZoom(false);
}

function show(message: string, busy = false): void {
  notice.textContent = message;
  notice.hidden = message === '';
  document.body.classList.toggle('busy', busy);
}

async function draw(dot: string, nodes: Record<string, NodeView>, text: string, focus?: string): Promise<void> {
  const viz = await vizReady;
  const svg = viz.renderSVGElement(dot);
  // Graphviz's size in points, as CSS pixels; the zoom sizes the SVG from it (a wider tree scrolls).
  const px = (attr: string) => (parseFloat(svg.getAttribute(attr) ?? '0') * 4) / 3;
  natural = { width: px('width'), height: px('height') };
  focusId = focus;
  svg.querySelector('g.graph > title')?.remove();
  for (const g of svg.querySelectorAll<SVGGElement>('g.node')) {
    const view = nodes[g.id];
    if (!view) continue;
    g.classList.add(`lloom-${view.role}`);
    // Graphviz's own <title> is the node's name; the hover says what a click does.
    const title = g.querySelector('title') ?? g.insertBefore(document.createElementNS(svg.namespaceURI, 'title'), g.firstChild);
    title.textContent = view.title;
    for (const a of g.querySelectorAll('a')) a.removeAttribute('xlink:title');
    if (view.role === 'root') continue;
    g.setAttribute('tabindex', '0');
    g.setAttribute('role', 'button');
    g.setAttribute('aria-label', view.title);
    const click = () => vscode.postMessage({ type: 'click', id: g.id });
    g.addEventListener('click', click);
    g.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        click();
      }
    });
  }
  graph.replaceChildren(svg);
  applyZoom(true);
  caption.textContent = text;
  show('');
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if (message.type === 'tree') {
    draw(message.dot, message.nodes, message.caption, message.focus).catch((err: unknown) => show(`Graphviz could not draw the tree: ${String(err)}`));
  } else if (message.type === 'busy') {
    show(message.message, true);
  } else if (message.type === 'notice') {
    show(message.message);
  }
});

document.getElementById('zoom-in')!.addEventListener('click', () => setZoom(Number(document.body.dataset.scale ?? '1') * 1.25));
document.getElementById('zoom-out')!.addEventListener('click', () => setZoom(Number(document.body.dataset.scale ?? '1') / 1.25));
document.getElementById('zoom-fit')!.addEventListener('click', () => setZoom('fit'));
graph.addEventListener(
  'wheel',
  (event) => {
    if (!event.ctrlKey) return;
    event.preventDefault();
    setZoom(Number(document.body.dataset.scale ?? '1') * (event.deltaY < 0 ? 1.1 : 1 / 1.1));
  },
  { passive: false },
);
// A fitted tree follows the view's width as the panel is resized.
new ResizeObserver(() => {
  if (zoom === 'fit') applyZoom(false);
}).observe(graph);
document.getElementById('refresh')!.addEventListener('click', () => vscode.postMessage({ type: 'refresh' }));
document.getElementById('notices')!.addEventListener('click', () => vscode.postMessage({ type: 'licences' }));
vscode.postMessage({ type: 'ready' });
