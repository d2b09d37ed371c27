export declare const MAY_IMPORT: Record<
  | 'libs/identity'
  | 'libs/sync'
  | 'libs/p2p'
  | 'libs/queue'
  | 'migrations'
  | 'libs/storage'
  | 'libs/matrix'
  | 'libs/home'
  | 'libs/rooms'
  | 'apps/server'
  | 'apps/node',
  string[]
>;
export declare const PACKAGES: string[];
export declare const FRAMEWORK_FREE: string[];
export declare const DATABASE_MODULES: string[];
export declare const FRAMEWORK_MODULES: string[];
export declare const REPOSITORIES_ONLY: string[];
export declare const REPOSITORIES_ONLY_SYNTAX: Array<{ selector: string; message: string }>;
export declare function restrictedPatterns(pkg: string): Array<{ group: string[]; message: string }>;
