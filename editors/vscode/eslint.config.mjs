// ESLint for the extension (`npm run lint`): the recommended JavaScript and
// typescript-eslint rules on the sources, the unit tests and the chat page.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['out/**', 'node_modules/**', '*.vsix'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A variable that callbacks made before its assignment read stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // The chat view's page runs in the webview, a browser.
    files: ['media/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        acquireVsCodeApi: 'readonly',
        document: 'readonly',
        window: 'readonly',
        HTMLElement: 'readonly',
        HTMLDetailsElement: 'readonly',
        CSS: 'readonly',
      },
    },
  },
);
