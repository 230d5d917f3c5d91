/** The tool version, recorded in every output's metadata. Injected by the bundler; "dev" from source. */
declare const __CHATVEC_VERSION__: string | undefined;
export const TOOL_VERSION: string = typeof __CHATVEC_VERSION__ === 'string' ? __CHATVEC_VERSION__ : 'dev';
