/**
 * The Try Model panel's page: one column per model (two for Compare Replies), the conversation's
 * turns with each model's reply streaming in, and a form with the system prompt, max tokens, the
 * prompt, Send and Stop. It renders the state the extension sends (src/protocol/tryModel.ts),
 * keeps it with setState so the serializer can restore the panel after a reload, and sends only
 * what the user asks for. Under a CSP without inline code: elements are built with the DOM API.
 */
import { type FromTryWebview, TRY_DEFAULT_MAX_TOKENS, type ToTryWebview, type TryPanelState } from '../src/protocol/tryModel';

interface VsCodeApi {
  postMessage(message: FromTryWebview): void;
  getState(): TryPanelState | undefined;
  setState(state: TryPanelState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (m: FromTryWebview) => vscode.postMessage(m);
window.addEventListener('error', (e) => post({ type: 'error', message: `${e.message} (${e.filename}:${e.lineno})` }));

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

const app = document.getElementById('app')!;
const header = el('header', { className: 'columns head' });
const transcript = el('section', { className: 'transcript', ariaLive: 'polite' });
const system = el('textarea', { id: 'system', rows: 2, placeholder: 'System prompt (optional): the first message of the conversation' });
const maxTokens = el('input', { id: 'maxTokens', type: 'number', min: '1', max: '8192', value: String(TRY_DEFAULT_MAX_TOKENS) });
const prompt = el('textarea', { id: 'prompt', rows: 3, placeholder: 'Message (Ctrl+Enter sends)' });
const send = el('button', { id: 'send', type: 'submit', textContent: 'Send' });
const stop = el('button', { id: 'stop', type: 'button', textContent: 'Stop', className: 'secondary' });
const form = el(
  'form',
  { className: 'composer' },
  el('label', { htmlFor: 'system', textContent: 'System prompt' }),
  system,
  el('div', { className: 'row' }, el('label', { htmlFor: 'maxTokens', textContent: 'Max tokens' }), maxTokens),
  prompt,
  el('div', { className: 'row buttons' }, send, stop),
);
app.replaceChildren(header, transcript, form);

let state: TryPanelState | undefined;

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = prompt.value;
  const n = Math.floor(Number(maxTokens.value));
  if (!state || state.busy || text.trim() === '' || !(n >= 1)) return;
  post({ type: 'send', text, system: system.value, maxTokens: n });
  prompt.value = '';
});
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    form.requestSubmit();
  }
});
stop.addEventListener('click', () => post({ type: 'stop' }));

function render(s: TryPanelState): void {
  const cols = s.columns.length;
  header.style.setProperty('--cols', String(cols));
  header.replaceChildren(
    ...s.columns.map((c) => {
      const title = el('h1', { textContent: c.name ?? c.model.split(/[\\/]/).pop() ?? c.model, title: c.model });
      const bits = [c.backend, c.tokensPerSecond !== undefined ? `${c.tokensPerSecond.toFixed(1)} tokens/s` : undefined].filter(Boolean).join(' · ');
      const status = el('p', { className: `status ${c.status}`, textContent: c.status === 'ready' ? (c.message ?? bits) : (c.message ?? 'Loading the model…') });
      if (c.status === 'ready' && c.message && bits) status.append(el('br'), bits);
      return el('div', { className: 'column' }, title, status);
    }),
  );
  transcript.replaceChildren(
    ...s.turns.map((t) =>
      el(
        'article',
        { className: 'turn' },
        el('div', { className: 'user', textContent: t.user }),
        el(
          'div',
          { className: 'columns replies' },
          ...t.replies.map((r, i) => {
            const stopReason = t.stops[i];
            const reply = el('div', { className: `reply ${stopReason ?? ''}`, textContent: r });
            if (stopReason === 'cancelled') reply.append(el('span', { className: 'note', textContent: ' [stopped]' }));
            if (stopReason === 'maxTokens') reply.append(el('span', { className: 'note', textContent: ' [max tokens]' }));
            return reply;
          }),
        ),
      ),
    ),
  );
  transcript.querySelectorAll<HTMLElement>('.columns').forEach((c) => c.style.setProperty('--cols', String(cols)));
  // The fields the user may be editing are only set while they are not focused.
  if (document.activeElement !== system) system.value = s.system;
  if (document.activeElement !== maxTokens) maxTokens.value = String(s.maxTokens);
  const loaded = s.columns.every((c) => c.status === 'ready');
  send.disabled = s.busy || !loaded;
  stop.disabled = !s.busy;
  transcript.lastElementChild?.scrollIntoView({ block: 'end' });
}

window.addEventListener('message', (event: MessageEvent) => {
  const m = event.data as ToTryWebview;
  if (m?.type !== 'state') return;
  state = m.state;
  vscode.setState(m.state);
  render(m.state);
});

// A restored page shows its saved turns at once; the extension's state follows.
const saved = vscode.getState();
if (saved) render({ ...saved, busy: false });
post({ type: 'ready' });
