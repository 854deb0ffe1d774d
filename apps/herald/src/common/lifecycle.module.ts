import { Global, Injectable, Module } from '@nestjs/common';

/**
 * Set the moment the process is told to stop, before any shutdown hook runs:
 * from then on this replica refuses new WebSockets (503, so Nginx tries the
 * next replica) and reports not ready, while it drains what it holds.
 */
@Injectable()
export class DrainState {
  private draining = false;

  get isDraining(): boolean {
    return this.draining;
  }

  begin(): void {
    this.draining = true;
  }
}

@Global()
@Module({ providers: [DrainState], exports: [DrainState] })
export class LifecycleModule {}
