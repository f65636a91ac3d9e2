// Markdown → HTML for the chat view. Raw HTML in the model's text is escaped
// (never interpreted) and only http(s)/mailto links are kept, so a reply can't
// script the webview. Pure logic (no `vscode` import).

import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, breaks: false, typographer: false });

const SAFE_LINK = /^(https?:|mailto:)/i;
md.validateLink = (url: string) => SAFE_LINK.test(url.trim());

const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('title', tokens[idx].attrGet('href') ?? '');
  return defaultLinkOpen(tokens, idx, options, env, self);
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
