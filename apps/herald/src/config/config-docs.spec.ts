import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigurationDoc } from './config-docs';

describe('docs/configuration.md', () => {
  it('lists exactly what the config schema reads (run `npm run docs:config` after changing it)', () => {
    const committed = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'configuration.md'), 'utf8');
    expect(committed).toBe(renderConfigurationDoc());
  });
});
