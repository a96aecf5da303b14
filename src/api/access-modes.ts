// A volume's access modes as kubectl prints them, in tables and in describe.

const SHORT: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' }

/** kubectl's short access modes, comma-separated: RWO, ROX, RWX, RWOP. */
export function shortAccessModes(modes: string[]): string {
  return modes.map((m) => SHORT[m] ?? m).join(',')
}
