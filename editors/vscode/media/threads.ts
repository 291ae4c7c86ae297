/**
 * The Threads view's webview: draws the server's DOT with Graphviz (viz.js, WebAssembly)
 * and turns clicks on its nodes into messages for the extension.  Bundled by esbuild to
 * dist/threads.js; the message shapes live in src/core/threads.ts.
 */
import { instance } from '@viz-js/viz';

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

function show(message: string, busy = false): void {
  notice.textContent = message;
  notice.hidden = message === '';
  document.body.classList.toggle('busy', busy);
}

async function draw(dot: string, nodes: Record<string, NodeView>, text: string): Promise<void> {
  const viz = await vizReady;
  const svg = viz.renderSVGElement(dot);
  // Graphviz's size (in points) is kept: a tree wider than the view scrolls.
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
  caption.textContent = text;
  show('');
}

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if (message.type === 'tree') {
    draw(message.dot, message.nodes, message.caption).catch((err: unknown) => show(`Graphviz could not draw the tree: ${String(err)}`));
  } else if (message.type === 'busy') {
    show(message.message, true);
  } else if (message.type === 'notice') {
    show(message.message);
  }
});

document.getElementById('refresh')!.addEventListener('click', () => vscode.postMessage({ type: 'refresh' }));
document.getElementById('notices')!.addEventListener('click', () => vscode.postMessage({ type: 'licences' }));
vscode.postMessage({ type: 'ready' });
