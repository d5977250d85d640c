{-# LANGUAGE OverloadedStrings #-}
-- | Tests of the hello application, calling it directly (no network).
module Main (main) where

import Control.Monad (unless)
import qualified Data.ByteString.Lazy as L
import Data.IORef (newIORef, readIORef, writeIORef)
import Hello (Settings (..), app)
import Network.HTTP.Types (Status, methodPost, statusCode)
import Network.Wai (Request, defaultRequest, pathInfo, requestMethod, responseToStream)
import Network.Wai.Internal (ResponseReceived (..))
import Data.ByteString.Builder (toLazyByteString)
import System.Exit (exitFailure)

call :: Settings -> Request -> IO (Status, L.ByteString)
call s req = do
  out <- newIORef (toEnum 500, "")
  _ <- app s req $ \resp -> do
    let (st, _, withBody) = responseToStream resp
    body <- newIORef mempty
    withBody $ \stream -> stream (\b -> readIORef body >>= writeIORef body . (<> b)) (pure ())
    b <- readIORef body
    writeIORef out (st, toLazyByteString b)
    pure ResponseReceived
  readIORef out

check :: String -> Bool -> IO Bool
check name ok = do
  putStrLn ((if ok then "ok   " else "FAIL ") ++ name)
  pure ok

main :: IO ()
main = do
  let s = Settings "abc123" False
      get p = defaultRequest {pathInfo = p}
  (st1, b1) <- call s (get [])
  (st2, b2) <- call s ((get []) {requestMethod = methodPost})
  (st3, _) <- call s (get ["health"])
  (st4, _) <- call (s {failHealth = True}) (get ["health"])
  (st5, _) <- call s (get ["nope"])
  (st6, b6) <- call s (get ["slow"])
  results <- sequence
    [ check "GET / answers 200 with the version" (statusCode st1 == 200 && b1 == "hello from abc123\n")
    , check "POST / answers like GET /" (statusCode st2 == 200 && b2 == b1)
    , check "GET /health answers 200" (statusCode st3 == 200)
    , check "HELLO_FAIL_HEALTH makes /health answer 503" (statusCode st4 == 503)
    , check "unknown paths answer 404" (statusCode st5 == 404)
    , check "GET /slow without ms answers at once" (statusCode st6 == 200 && b6 == b1)
    ]
  unless (and results) exitFailure
