// Who is calling the API, and what they may do.

export type Role = 'admin' | 'read-only'

export interface UserInfo {
  name: string
  role: Role
}

/** Resolves a bearer token to a user, or undefined when the token is unknown. */
export type Authenticator = (bearerToken: string) => Promise<UserInfo | undefined>

const READ_VERBS = new Set(['get', 'list', 'watch'])

/** Admins may do anything; read-only users may only read. */
export function mayPerform(user: UserInfo, verb: string): boolean {
  return user.role === 'admin' || READ_VERBS.has(verb)
}
