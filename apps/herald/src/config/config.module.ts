import { Global, Module } from '@nestjs/common';
import { HeraldConfig } from './config.schema';

/** Injection token of the parsed, typed configuration. */
export const HERALD_CONFIG = Symbol('HERALD_CONFIG');

@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: HeraldConfig) {
    return {
      module: ConfigModule,
      providers: [{ provide: HERALD_CONFIG, useValue: config }],
      exports: [HERALD_CONFIG],
    };
  }
}
