// Markdown → HTML for the chat view. Raw HTML in the model's text is escaped
// (never interpreted) and only http(s)/mailto links are kept, so a reply can't
// script the webview. Images are never loaded: `![alt](https://…?d=secret)`
// would make the webview fetch that URL the moment it renders (a silent way
// out for what the model read), so an image is shown as a link the person
// may click. The webview's CSP backs this up (img-src: own resources and
// data: only). Pure logic (no `vscode` import).

import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

const SAFE_LINK = /^(https?:|mailto:)/i;
md.validateLink = (url: string) => SAFE_LINK.test(url.trim());

const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('title', tokens[idx].attrGet('href') ?? '');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

// An image is a link to it: following a link is the person's act, loading is not.
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const src = token.attrGet('src') ?? '';
  const alt = self.renderInlineAsText(token.children ?? [], options, env).trim();
  let host = '';
  try {
    host = new URL(src).host;
  } catch {
    /* not a URL with a host (mailto:): the title says it all */
  }
  const label = `image${alt ? ` “${alt}”` : ''}${host ? ` from ${host}` : ''} (not loaded)`;
  return `<a class="image-link" href="${escapeHtml(src)}" title="${escapeHtml(src)}">[${escapeHtml(label)}]</a>`;
};

/**
 * Renders a (possibly still streaming) Markdown reply. An unclosed code fence
 * mid-stream renders as a code block, which is what the person will see once
 * it closes.
 */
export function renderMarkdown(text: string): string {
  return md.render(text);
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}
