import { Module } from '@nestjs/common';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { UpgradeAuthService } from './upgrade-auth.service';
import { UserTokenService } from './user-token.service';

@Module({
  providers: [ApiKeyService, ApiKeyGuard, UserTokenService, UpgradeAuthService],
  exports: [ApiKeyService, ApiKeyGuard, UserTokenService, UpgradeAuthService],
})
export class AuthModule {}
