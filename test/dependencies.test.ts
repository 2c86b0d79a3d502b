/**
 * package.json "dependencies" match what src/ imports: every runtime dependency is imported somewhere
 * in src/ (an unused one only costs install size, install scripts and audit noise in every image), and
 * src/ imports no devDependency and no package it does not declare (it would be missing, or only there
 * by accident, in a production install: `npm ci --omit=dev`).
 *
 * Imports are read with the TypeScript parser, so static imports, re-exports, dynamic import() and
 * require() and require.resolve() all count; type-only imports are left out (they are erased from the compiled code).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Module specifiers a file loads at run time (type-only imports and exports excluded). */
export function runtimeImports(fileName: string, text: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.importClause?.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      if (!node.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      if (!node.isTypeOnly) found.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.arguments.length > 0) {
      const [first] = node.arguments;
      // require.resolve('pkg') counts too: its path is loaded elsewhere (e.g. in a worker thread).
      const isLoader =
        node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === 'require') ||
        (ts.isPropertyAccessExpression(node.expression) &&
          ts.isIdentifier(node.expression.expression) &&
          node.expression.expression.text === 'require' &&
          node.expression.name.text === 'resolve');
      if (isLoader && first && ts.isStringLiteralLike(first)) found.push(first.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** 'kafkajs/src/broker' -> 'kafkajs', '@redis/client/x' -> '@redis/client'; undefined for relative and builtin. */
export function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) return undefined;
  if (specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]!)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** package -> the src files that load it at run time. */
const importers = new Map<string, string[]>();
for (const file of sourceFiles(join(ROOT, 'src'))) {
  for (const specifier of runtimeImports(file, readFileSync(file, 'utf8'))) {
    const name = packageOf(specifier);
    if (!name) continue;
    importers.set(name, [...(importers.get(name) ?? []), relative(ROOT, file)]);
  }
}

describe('runtime dependencies', () => {
  test('the import scan sees every kind of import, and skips type-only ones', () => {
    const text = [
      "import a from 'pkg-a';",
      "import type { B } from 'pkg-b';",
      "import { type C } from 'pkg-c';",
      "export { d } from 'pkg-d/sub';",
      "export type { E } from 'pkg-e';",
      "const f = require('@scope/pkg-f/deep/path');",
      "const g = await import('pkg-g');",
      "import h = require('pkg-h');",
      "const i = require.resolve('pkg-i');",
      "import { readFileSync } from 'node:fs';",
      "import { join } from 'path';",
      "import local from './local';",
    ].join('\n');
    const packages = runtimeImports('x.ts', text).map(packageOf);
    // `import { type C }` still loads the module at run time (without verbatimModuleSyntax, TypeScript
    // may drop it; counting it errs on the side of keeping a dependency).
    expect(packages.filter(Boolean).sort()).toEqual([
      '@scope/pkg-f',
      'pkg-a',
      'pkg-c',
      'pkg-d',
      'pkg-g',
      'pkg-h',
      'pkg-i',
    ]);
  });

  test('every package.json dependency is imported somewhere in src/', () => {
    const unused = Object.keys(pkg.dependencies).filter((name) => !importers.has(name));
    expect(unused).toEqual([]);
  });

  test('src/ imports no devDependency', () => {
    const dev = [...importers]
      .filter(([name]) => name in pkg.devDependencies)
      .map(([name, files]) => `${name} (${files.join(', ')})`);
    expect(dev).toEqual([]);
  });

  test('every package src/ imports is a declared runtime dependency', () => {
    const undeclared = [...importers]
      .filter(([name]) => !(name in pkg.dependencies))
      .map(([name, files]) => `${name} (${files.join(', ')})`);
    expect(undeclared).toEqual([]);
  });
});
