/** The stamp a successful build writes under `root`; its modification time is that build's start. */
export declare function stampPath(root: string): string;
/** The package directories tsconfig.build.json under `root` builds, in its order. */
export declare function packages(root: string): string[];
/** Why `root` needs a build (a sentence), or undefined when the last successful build is current. */
export declare function staleReason(root: string): string | undefined;
