import { PipeTransform } from '@nestjs/common';
import { ErrorCode, reportProblems, type ReportOptions } from '@herald/protocol';
import type { z } from 'zod';
import { BadRequestError, PayloadTooLargeError } from './errors';

/** `value` parsed by `schema`, or the 400 (413 for a payload over the limit) naming each problem. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, options?: ReportOptions): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const report = reportProblems(result.error.issues, value, options);
  if (report.code === ErrorCode.PayloadTooLarge) throw new PayloadTooLargeError(report.message);
  throw new BadRequestError(report.message, report.details);
}

/** Validates a `@Body()` or `@Query()` with a schema of `@herald/protocol`: `@Body(new ZodPipe(AcksRequestSchema))`. */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(
    readonly schema: S,
    readonly options: ReportOptions = {},
  ) {}

  transform(value: unknown): z.output<S> {
    return parseOrThrow(this.schema, value, this.options);
  }
}
