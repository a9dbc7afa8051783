// What survives a reload of this tab (sessionStorage: gone when the tab closes, never in a URL):
// the login token, the nick, and the rooms we were in.

const KEYS = { token: "anychat.token", nick: "anychat.nick", rooms: "anychat.rooms" };

function read(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage disabled: nothing survives a reload, everything else works
  }
}

function write(key, value) {
  try {
    if (value === null || value === undefined) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage disabled or full: not fatal
  }
}

export function token() {
  return read(KEYS.token);
}

export function setToken(value) {
  write(KEYS.token, value);
}

export function nick() {
  return read(KEYS.nick);
}

export function setNick(value) {
  write(KEYS.nick, value);
}

export function rooms() {
  try {
    const value = JSON.parse(read(KEYS.rooms) ?? "[]");
    return Array.isArray(value) ? value.filter((r) => typeof r === "string") : [];
  } catch {
    return [];
  }
}

export function setRooms(names) {
  write(KEYS.rooms, JSON.stringify(names));
}

/** Log out: nothing of this session is kept. */
export function forget() {
  for (const key of Object.values(KEYS)) write(key, null);
}
