/**
 * "LLooM: Show Threads": a webview beside the editor that draws the tree of the last
 * weave at the cursor (the server's `lloom.tree` JSON, its single-child chains collapsed
 * into phrases by `core/threadGraph`, drawn by Graphviz in the webview),
 * grows when a weave of its document ends, inserts a leaf's beam on a click, and weaves
 * from an inner node.  It also shows a tree loaded from beside its document ("Load Thread
 * Tree"), whose clicks act at the saved position while the text there still fits.  The
 * logic it needs lives in `core/threads` and `core/treeFile`.
 */
import { randomBytes } from 'node:crypto';

import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';

import { ACCEPT, acceptArguments, endOfInsertion, parseAcceptResult } from './core/protocol';
import {
  TREE,
  type ToWebview,
  type TreeNode,
  type TreeOptions,
  LICENCE_NOTICE,
  NOTICES_FILE,
  contentSecurityPolicy,
  indexNodes,
  nodeAction,
  nodeViews,
  nonceFrom,
  parseFromWebview,
  parseTreeResult,
  treeArguments,
  treeCaption,
} from './core/threads';
import { collapseChains, likeliestLeaf, phraseDot } from './core/threadGraph';
import { type LoadedTree, loadedCaption, treeFitsText } from './core/treeFile';
import type { WeaveStatus } from './core/weaveStatus';
import { plainText } from './core/notices';
import type { LLooMClient } from './client';
import { StatusBar } from './statusBar';

const VIEW_TYPE = 'lloom.threads';

/**
 * The status bar, telling the Threads view too when a weave ends: the client reports
 * `lloom/status` to the status bar, and a language client keeps one handler per
 * notification, so a second `onNotification` would take it from the status bar.
 */
export class WeaveWatchingStatusBar extends StatusBar {
  private readonly weaves = new vscode.EventEmitter<WeaveStatus>();
  readonly onDidWeave = this.weaves.event;

  override onWeave(status: WeaveStatus): void {
    super.onWeave(status);
    this.weaves.fire(status);
  }

  override dispose(): void {
    this.weaves.dispose();
    super.dispose();
  }
}

/** The tree on show: where it was woven, from what, and its nodes by id. */
interface Shown {
  uri: string;
  document: vscode.TextDocument;
  position: vscode.Position;
  version: number;
  after: string;
  nodes: Map<string, TreeNode>;
  /** Set for a tree loaded from its file: not woven again, drawn from the file. */
  loaded?: LoadedTree;
}

export class ThreadsView implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private document: vscode.TextDocument | undefined;
  private shown: Shown | undefined;
  /** The request in flight; a newer one supersedes it. */
  private request: vscode.CancellationTokenSource | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly server: LLooMClient,
    private readonly extensionUri: vscode.Uri,
    private readonly log: vscode.LogOutputChannel,
    onDidWeave: vscode.Event<WeaveStatus>,
  ) {
    this.subscriptions.push(onDidWeave((status) => this.onWeave(status)));
  }

  register(): vscode.Disposable[] {
    return [
      vscode.commands.registerCommand('lloom.showThreads', () => this.show()),
      vscode.commands.registerCommand('lloom.refreshThreads', () => this.refresh()),
    ];
  }

  /** Open (or reveal) the view for the active editor's document, and draw its tree. */
  show(): void {
    const editor = vscode.window.activeTextEditor;
    if (editor) this.document = editor.document;
    if (!this.document) {
      void vscode.window.showInformationMessage('LLooM: open a text editor, then show its threads.');
      return;
    }
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
      void this.refresh();
      return;
    }
    this.open();
  }

  /**
   * Show a tree loaded from beside `document`, drawn by the server from the file: it is
   * not woven again, and stays on show until Refresh (or a click) weaves at the cursor.
   */
  showLoaded(document: vscode.TextDocument, uri: string, tree: LoadedTree): void {
    this.request?.cancel();
    this.document = document;
    const position = new vscode.Position(tree.position.line, tree.position.character);
    this.shown = { uri, document, position, version: document.version, after: tree.after, nodes: indexNodes(tree.root), loaded: tree };
    if (this.panel) {
      this.panel.reveal(vscode.ViewColumn.Beside, true);
      this.postLoaded(tree);
    } else {
      this.open(); // its `ready` draws the loaded tree
    }
  }

  private postLoaded(tree: LoadedTree): void {
    this.postTree(tree.root, tree.after, loadedCaption(tree));
  }

  /** The tree drawn as phrases: the nodes' hovers and clicks are those of each phrase's last token. */
  private postTree(root: TreeNode, after: string, caption: string): void {
    const phrases = collapseChains(root);
    const focus = likeliestLeaf(phrases)?.id;
    this.post({ type: 'tree', dot: phraseDot(phrases, focus), nodes: nodeViews(phrases, after), caption, ...(focus ? { focus } : {}) });
  }

  private open(): void {
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const panel = vscode.window.createWebviewPanel(
      VIEW_TYPE,
      'LLooM Threads',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, localResourceRoots: [media, dist], retainContextWhenHidden: true },
    );
    this.panel = panel;
    panel.webview.html = this.html(panel.webview, media, dist);
    panel.webview.onDidReceiveMessage((raw: unknown) => {
      const message = parseFromWebview(raw);
      if (!message) return;
      const loaded = this.shown?.loaded;
      if (message.type === 'licences') void this.openNotices();
      else if (message.type === 'ready' && loaded) this.postLoaded(loaded);
      else if (message.type === 'ready' || message.type === 'refresh') void this.refresh();
      else void this.click(message.id);
    });
    panel.onDidDispose(() => {
      this.request?.cancel();
      this.panel = undefined;
      this.shown = undefined;
    });
  }

  /** Draw the tree at the cursor of the view's document (from the same node as before, if the cursor stayed). */
  async refresh(): Promise<void> {
    const document = this.document;
    if (!this.panel || !document || document.isClosed) return;
    const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
    const position = editor?.selection.active ?? this.shown?.position ?? new vscode.Position(0, 0);
    const shown = this.shown;
    const after = shown?.document === document && shown.position.isEqual(position) && !shown.loaded ? shown.after : '';
    await this.draw(document, position, after);
  }

  private onWeave(status: WeaveStatus): void {
    // A weave this view asked for ends while it waits; its answer draws the tree.
    if (status.state !== 'done' || this.request || !this.panel || !this.document || this.shown?.loaded) return;
    if (status.uri !== this.shown?.uri && status.uri !== this.document.uri.toString()) return;
    void this.refresh();
  }

  private async draw(document: vscode.TextDocument, position: vscode.Position, after: string): Promise<void> {
    const client = await this.server.ensureStarted();
    if (!client || !this.panel) return;
    this.request?.cancel();
    const source = new vscode.CancellationTokenSource();
    this.request = source;
    const uri = client.code2ProtocolConverter.asUri(document.uri);
    this.post({ type: 'busy', message: after ? 'Weaving from the node…' : 'Weaving…' });
    try {
      const options: TreeOptions = after ? { after } : {};
      // The JSON tree, drawn here: chains of single tokens become phrases (core/threadGraph).
      const json = parseTreeResult(await this.tree(client, uri, position, { ...options, format: 'json' }, source.token));
      if (json.error) throw new Error(json.error);
      if (source.token.isCancellationRequested) return;
      if (!json.root) throw new Error('lloom.tree answered without a tree');
      this.shown = { uri, document, position, version: json.version, after, nodes: indexNodes(json.root) };
      this.postTree(json.root, after, treeCaption(json));
    } catch (err) {
      if (source.token.isCancellationRequested) return;
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`Threads: ${message}`);
      this.post({ type: 'notice', message: plainText(`LLooM could not draw the threads: ${message}`) });
    } finally {
      if (this.request === source) this.request = undefined;
      source.dispose();
    }
  }

  private tree(
    client: LanguageClient,
    uri: string,
    position: vscode.Position,
    options: TreeOptions,
    token: vscode.CancellationToken,
  ): Promise<unknown> {
    return client.sendRequest(
      ExecuteCommandRequest.type,
      { command: TREE, arguments: treeArguments(uri, position, options) },
      token,
    );
  }

  private async click(id: string): Promise<void> {
    const shown = this.shown;
    const node = shown?.nodes.get(id);
    if (!shown || !node) return;
    if (shown.loaded) {
      await this.clickLoaded(shown, shown.loaded, node);
      return;
    }
    const action = nodeAction(node, shown.after);
    if (action.kind === 'weaveFrom') await this.draw(shown.document, shown.position, action.after);
    else if (action.kind === 'accept') await this.accept(shown, action.insertText);
  }

  /**
   * A click on a loaded tree acts at the saved position, as it would have when the tree
   * was woven, but only while the text before it still is the story the tree grew from.
   */
  private async clickLoaded(shown: Shown, tree: LoadedTree, node: TreeNode): Promise<void> {
    const { document, position } = shown;
    const action = nodeAction(node, tree.after);
    if (action.kind === 'none') return;
    const text = document.isClosed ? undefined : document.getText(new vscode.Range(new vscode.Position(0, 0), position));
    if (text === undefined || !treeFitsText(tree, text)) {
      const where = `line ${position.line + 1}, column ${position.character + 1}`;
      const message = `LLooM: the saved tree is stale: the text before ${where} is no longer the story it was woven from.`;
      this.post({ type: 'notice', message });
      const choice = await vscode.window.showWarningMessage(message, 'Weave Anew');
      if (choice && !document.isClosed) {
        this.shown = undefined;
        const editor = vscode.window.visibleTextEditors.find((e) => e.document === document);
        await this.draw(document, editor?.selection.active ?? position, '');
      }
      return;
    }
    if (action.kind === 'weaveFrom') await this.draw(document, position, action.after);
    else await this.accept({ ...shown, version: document.version }, action.insertText);
  }

  /** Insert a leaf's beam with `lloom.accept`, which refuses when the document changed since the weave. */
  private async accept(shown: Shown, insertText: string): Promise<void> {
    const client = await this.server.ensureStarted();
    if (!client) return;
    try {
      const raw: unknown = await client.sendRequest(ExecuteCommandRequest.type, {
        command: ACCEPT,
        arguments: acceptArguments(shown.uri, shown.version, shown.position, insertText),
      });
      const result = parseAcceptResult(raw);
      if (!result.applied) {
        const reason = result.reason ?? 'the document changed';
        this.post({ type: 'notice', message: `LLooM did not insert the beam: ${reason}.` });
        void vscode.window.showWarningMessage(`LLooM did not insert the beam: ${reason}.`);
        return;
      }
      const end = endOfInsertion(shown.position, insertText);
      const cursor = new vscode.Position(end.line, end.character);
      const editor = vscode.window.visibleTextEditors.find((e) => e.document === shown.document);
      if (editor) {
        editor.selection = new vscode.Selection(cursor, cursor);
        editor.revealRange(new vscode.Range(cursor, cursor));
      }
      // The tree of the text as it is now: the accept's prefetch (if any) is joined, not repeated.
      this.shown = { ...shown, position: cursor, after: '' };
      await this.draw(shown.document, cursor, '');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`lloom.accept failed: ${message}`);
      void vscode.window.showErrorMessage(plainText(`LLooM: ${message}`));
    }
  }

  private async openNotices(): Promise<void> {
    const notices = vscode.Uri.joinPath(this.extensionUri, NOTICES_FILE);
    await vscode.window.showTextDocument(notices, { viewColumn: vscode.ViewColumn.Active, preview: true });
  }

  private post(message: ToWebview): void {
    void this.panel?.webview.postMessage(message);
  }

  private html(webview: vscode.Webview, media: vscode.Uri, dist: vscode.Uri): string {
    const nonce = nonceFrom(randomBytes(16));
    const csp = contentSecurityPolicy(webview.cspSource, nonce);
    const style = webview.asWebviewUri(vscode.Uri.joinPath(media, 'threads.css'));
    const script = webview.asWebviewUri(vscode.Uri.joinPath(dist, 'threads.js'));
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style.toString()}">
<title>LLooM Threads</title>
</head>
<body>
<header><span id="caption">LLooM Threads</span>
<span class="zoom"><button id="zoom-out" type="button" title="Smaller">−</button><button id="zoom-fit" type="button" title="Fit the width of the view">Fit</button><button id="zoom-in" type="button" title="Larger">+</button></span>
<button id="refresh" type="button">Refresh</button></header>
<div id="notice" role="status">Weaving…</div>
<div id="graph" aria-label="The tree of the weave: click a leaf to insert its beam, an inner node to weave from it"></div>
<footer id="licences">${LICENCE_NOTICE} <button id="notices" type="button" class="link">Licences</button></footer>
<script type="module" nonce="${nonce}" src="${script.toString()}"></script>
</body>
</html>`;
  }

  dispose(): void {
    this.request?.cancel();
    this.panel?.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
