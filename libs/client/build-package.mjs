/**
 * Builds @herald/client into `libs/client/dist`, what `npm pack libs/client` ships (docs/client.md): one ESM
 * file, one CommonJS file and a declaration file for each, with no runtime dependency and the protocol types
 * it uses written out in the declarations (no import of @herald/protocol, nor of zod, whose schemas those
 * types come from). Run by `npm run build`, or `node libs/client/build-package.mjs`.
 */
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { generateDtsBundle } from 'dts-bundle-generator';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const out = join(here, 'dist');
const work = mkdtempSync(join(tmpdir(), 'herald-client-'));
const protocolEntry = join(here, '..', 'protocol', 'src', 'index.ts');
const manifest = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));

/** The SDK's sources (specs aside), parsed once. */
function sdkSources() {
  const files = ts.sys.readDirectory(src, ['.ts']).filter((f) => !f.endsWith('.spec.ts'));
  return files.map((f) => ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true));
}

/** The names the SDK imports from @herald/protocol; a value import is refused (no runtime dependency). */
function protocolImports(sources) {
  const names = new Set();
  for (const source of sources) {
    for (const statement of source.statements) {
      const from =
        (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier;
      if (!from || from.text !== '@herald/protocol') continue;
      const clause = ts.isImportDeclaration(statement) ? statement.importClause : statement;
      const bindings = ts.isImportDeclaration(statement) ? clause?.namedBindings : statement.exportClause;
      for (const element of bindings?.elements ?? []) {
        if (!clause.isTypeOnly && !element.isTypeOnly) {
          throw new Error(`${source.fileName}: ${element.name.text} is a value import from @herald/protocol`);
        }
        names.add((element.propertyName ?? element.name).text);
      }
    }
  }
  return names;
}

/**
 * `export type Name = ...;` for each name and every protocol type they refer to, written out structurally by
 * the compiler (a zod-derived type becomes its object type).
 */
function protocolDeclarations(wanted) {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(here, '..', 'protocol', 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  const program = ts.createProgram([protocolEntry], { ...config.options, noEmit: true });
  const checker = program.getTypeChecker();
  const exports = new Map(
    checker
      .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(protocolEntry)))
      .map((s) => [s.name, s]),
  );
  const flags =
    ts.TypeFormatFlags.NoTruncation |
    ts.TypeFormatFlags.InTypeAlias |
    ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType;
  const printed = new Map();
  const queue = [...wanted];
  while (queue.length > 0) {
    const name = queue.shift();
    if (printed.has(name)) continue;
    let symbol = exports.get(name);
    if (!symbol) throw new Error(`@herald/protocol exports no ${name}`);
    if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    const declaration = symbol.declarations?.find((d) => ts.isInterfaceDeclaration(d) || ts.isTypeAliasDeclaration(d));
    let text;
    if (declaration && ts.isInterfaceDeclaration(declaration)) {
      // An interface is written by hand already: copied with its comment.
      const leading = declaration.getSourceFile().text.slice(declaration.getFullStart(), declaration.getStart());
      const doc = /\/\*\*[\s\S]*?\*\/\s*$/.exec(leading)?.[0].trim();
      text = doc ? `${doc}\n${declaration.getText()}` : declaration.getText();
    } else if (declaration) {
      text = `export type ${name} = ${checker.typeToString(checker.getDeclaredTypeOfSymbol(symbol), undefined, flags)};`;
    } else {
      // A constant the SDK names with `typeof` (LimitCloseReason).
      text = `export declare const ${name}: ${checker.typeToString(checker.getTypeOfSymbol(symbol), undefined, flags)};`;
    }
    if (/\bz\.|import\(|\bZod|\$|\bany\b/.test(text))
      throw new Error(`${name} does not write out without zod: ${text}`);
    printed.set(name, text);
    const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const word of code.match(/\b[A-Za-z_][A-Za-z0-9_]*\b/g) ?? []) {
      if (exports.has(word) && !printed.has(word)) queue.push(word);
    }
  }
  return [...printed.values()].join('\n');
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// JavaScript: one file per module format, nothing external (the protocol imports are types only).
for (const [format, file] of [
  ['esm', 'index.js'],
  ['cjs', 'index.cjs'],
]) {
  await build({
    entryPoints: [join(src, 'index.ts')],
    outfile: join(out, file),
    bundle: true,
    format,
    platform: 'neutral',
    target: 'es2022',
    external: [],
    legalComments: 'none',
    logLevel: 'warning',
  });
}

// Declarations: the protocol types written out, then one bundle in which @herald/protocol is that file.
writeFileSync(join(work, 'protocol.d.ts'), `${protocolDeclarations(protocolImports(sdkSources()))}\n`);
writeFileSync(
  join(work, 'tsconfig.json'),
  JSON.stringify({
    extends: join(here, 'tsconfig.json'),
    compilerOptions: { baseUrl: here, paths: { '@herald/protocol': [join(work, 'protocol.d.ts')] }, rootDir: here },
    include: [join(src, '*.ts')],
    exclude: [join(src, '*.spec.ts')],
  }),
);
const [types] = generateDtsBundle(
  [{ filePath: join(src, 'index.ts'), output: { noBanner: true, exportReferencedTypes: false } }],
  {
    preferredConfigPath: join(work, 'tsconfig.json'),
  },
);
const imports = types.split('\n').filter((line) => /^\s*(import|export)\b.*\bfrom\s+['"]/.test(line));
if (imports.length > 0) throw new Error(`the declaration bundle still imports a module:\n${imports.join('\n')}`);
const banner = `// @herald/client ${manifest.version}: declarations, with the @herald/protocol types it uses written out.\n`;
writeFileSync(join(out, 'index.d.ts'), banner + types);
writeFileSync(join(out, 'index.d.cts'), banner + types);
rmSync(work, { recursive: true, force: true });

console.log(`built @herald/client ${manifest.version} into ${out}`);
