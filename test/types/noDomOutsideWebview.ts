// A type test (checked by `npm run typecheck`, never run): DOM types exist only for webview/
// (webview/tsconfig.json). If they leaked into the main program again (a `/// <reference
// lib="dom">` in any file it includes), `document` would type-check in src/core and the
// expect-error directive below would itself become an error.
export function coreCannotSeeTheDom(): unknown {
  // @ts-expect-error `document` is not declared outside webview/
  return document.title;
}
