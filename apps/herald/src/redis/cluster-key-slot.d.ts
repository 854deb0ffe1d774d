/** The hash slot (0-16383) of a key or channel on a Redis Cluster; the package ships no types. */
declare module 'cluster-key-slot' {
  function calculateSlot(key: string): number;
  export = calculateSlot;
}
