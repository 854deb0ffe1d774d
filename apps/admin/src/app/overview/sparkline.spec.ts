import { sparklinePoints } from './sparkline';

describe('sparklinePoints', () => {
  it('spreads the values across the width and scales the highest to the top', () => {
    expect(sparklinePoints([0, 5, 10], 100, 50)).toBe('0.0,49.0 50.0,25.0 100.0,1.0');
    expect(sparklinePoints([], 100, 50)).toBe('');
    expect(sparklinePoints([0, 0], 10, 10)).toBe('0.0,9.0 10.0,9.0');
  });
});
