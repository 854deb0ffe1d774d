# Herald images, built with the same commands as a local checkout (npm ci, npm run build).
#   herald  the service (one image, run as any number of replicas)
#   edge    Nginx with the rendered front-door config, the admin console and the demo page
# docker compose builds both (see docker-compose.yml).

# --- build: install and compile exactly as `npm run up` does ------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY libs/protocol/package.json libs/protocol/
COPY libs/client/package.json libs/client/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# --- herald: the service -------------------------------------------------------
FROM node:20-bookworm-slim AS herald
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/libs/protocol/package.json ./libs/protocol/package.json
COPY --from=build /app/libs/protocol/dist ./libs/protocol/dist
COPY --from=build /app/dist/apps ./dist/apps
USER node
EXPOSE 3000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/apps/herald/main.js"]

# --- edge: Nginx in front of the replicas --------------------------------------
FROM nginx:1.27-alpine AS edge
COPY nginx/compose/nginx.conf /etc/nginx/nginx.conf
COPY --from=build /app/dist/admin/browser/ /usr/share/nginx/html/admin/
COPY --from=build /app/dist/demo/ /usr/share/nginx/html/demo/
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --retries=5 CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health/live"]
