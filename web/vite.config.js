import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Brook serves the build: the demo app at /app/ and GraphiQL at /.
// `npm run dev` proxies the API to a Brook started with `make run`.
export default defineConfig({
  base: '/app/',
  plugins: [react()],
  build: {
    rollupOptions: {
      input: { app: 'index.html', graphiql: 'graphiql.html' },
    },
    chunkSizeWarningLimit: 3000,
  },
  server: {
    proxy: {
      '/query': { target: 'http://localhost:8080', ws: true },
      '/dev': 'http://localhost:8080',
    },
  },
});
