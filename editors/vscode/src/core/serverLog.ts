/**
 * The server's stderr as log records.
 *
 * lloom-lsp logs with Python's `logging` to stderr, e.g.
 * `2026-11-25 12:52:20,795 INFO lloom_lsp.server: message`.  The language client would
 * file every stderr line as an error; this reads the level instead, and keeps the level
 * of the record a line continues (a traceback).  Pure: no `vscode` import.
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<string, LogLevel> = {
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  WARN: 'warn',
  ERROR: 'error',
  CRITICAL: 'error',
};

const RECORD = /^(?:\d{4}-\d\d-\d\d[ T][\d:.,]+\s+)?(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\b[\s:]*(.*)$/;

export interface LogRecord {
  level: LogLevel;
  text: string;
}

/**
 * One stderr line as a record.  A line with no level continues the previous record
 * (`previous`); with no previous record it is an error, as text a program prints to
 * stderr before its logging starts (a usage error, an import failure) usually is.
 */
export function parseServerLogLine(line: string, previous: LogLevel | undefined): LogRecord {
  const match = RECORD.exec(line);
  if (match) return { level: LEVELS[match[1]], text: match[2] };
  return { level: previous ?? 'error', text: line };
}
