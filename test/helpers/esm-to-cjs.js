/**
 * Jest transform for ESM-only packages (NestJS 12 ships ESM only; Jest's CommonJS runtime on Node 20 cannot
 * require it): esbuild rewrites a file to CommonJS, `import()` to `require`, and `import.meta.url` to the
 * file's URL. Used by the integration tier, which loads the app in-process (jest.config.js).
 */
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const { code, map } = transformSync(source, {
      loader: 'js',
      format: 'cjs',
      target: 'node20',
      sourcefile: filename,
      sourcemap: true,
      supported: { 'dynamic-import': false },
      define: { 'import.meta.url': '__esmToCjsUrl' },
      banner: "const __esmToCjsUrl = require('node:url').pathToFileURL(__filename).href;",
    });
    return { code, map };
  },
};
