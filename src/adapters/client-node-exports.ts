/**
 * The parts of @kubernetes/client-node that nodediag uses. The build bundles
 * only these (scripts/bundle.mjs: half the code to parse and run at each
 * start), and kube.ts sees the library through them alone, so a part used
 * but not bundled is a type error, not a failure on a user's machine.
 */
export const CLIENT_NODE_EXPORTS = ['KubeConfig', 'CoreV1Api', 'CoordinationV1Api', 'CustomObjectsApi', 'Observable', 'PatchStrategy', 'Watch', 'setHeaderOptions'] as const;
